"""The Celery application: ``celery -A ticketproo worker`` runs the scheduler's executions
when ``SCHEDULED_TASKS["BACKEND"]`` is ``celery`` (see scheduled_tasks/backends/).

Its settings are Django's ``CELERY_*`` settings (ticketproo/settings.py; the broker from the
``CELERY_BROKER_URL`` environment variable). The tasks it runs are found in each installed
app's ``tasks`` module.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketproo.settings")

app = Celery("ticketproo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
