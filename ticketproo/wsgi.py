"""WSGI entry point."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketproo.settings")
application = get_wsgi_application()

# Only a process that serves requests gets here (runserver's serving child, each gunicorn
# worker), never migrate or other commands: the embedded scheduler starts here, if enabled.
from scheduled_tasks.embedded import start_if_enabled  # noqa: E402  (needs Django set up)

start_if_enabled()
