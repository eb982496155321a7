"""gunicorn settings for TicketProo's web process (``gunicorn -c deploy/gunicorn.conf.py
ticketproo.wsgi:application``).

The web process serves pages and the API only: the scheduler runs in its own process (the
daemon, with Celery workers or not; docs/deployment.md). ``raw_env`` below turns the embedded
scheduler off in the workers whatever the environment says, so a stray
``SCHEDULED_TASKS_EMBEDDED=true`` cannot start a second scheduler inside the web tier. For the
embedded mode (one host, no daemon) run gunicorn without this file.
"""

import os
from pathlib import Path

# Listen on every interface inside a container; behind a reverse proxy on a host, bind to
# 127.0.0.1:8000 or a unix socket (GUNICORN_BIND=unix:/run/ticketproo/web.sock).
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")

# Three synchronous workers: each request is short (pages, API; snippets never run in a
# request, "Run now" only queues), so a sync worker per CPU-ish is enough. WEB_CONCURRENCY is
# the conventional override.
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
worker_class = "sync"

# A request taking longer than this is stuck: the worker is killed and replaced.
timeout = 30
# On SIGTERM (docker stop, systemctl stop) workers finish their requests for up to this long.
graceful_timeout = 30
# Behind a proxy keeping connections open to us.
keepalive = 5

# Recycle workers now and then (memory growth of long-lived processes); the jitter keeps the
# three from restarting together.
max_requests = 1000
max_requests_jitter = 100

# Never import the application in the master: every worker opens its own database
# connections after the fork (docs/daemon.md explains why --preload and the embedded
# scheduler do not mix, too).
preload_app = False

# The workers' heartbeat files: /dev/shm is memory, so a slow or read-only disk (a container
# with read_only: true) cannot make gunicorn think a worker hangs.
# (Not a shared temporary directory of untrusted users: gunicorn's own private heartbeat files.)
_SHM = "/dev/shm"  # noqa: S108
if Path(_SHM).is_dir():
    worker_tmp_dir = _SHM

# Access and error logs to stdout/stderr: the container runtime or the journal keeps them.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")

# Forwarded headers: gunicorn trusts X-Forwarded-For/-Proto only from these addresses (its
# own FORWARDED_ALLOW_IPS environment variable, default 127.0.0.1). Behind a reverse proxy on
# another address (a container network) set it to that proxy's address. Django itself does
# not trust X-Forwarded-Proto unless SECURE_PROXY_SSL_HEADER is set (docs/deployment.md).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Set in the master before the workers load the application: no embedded scheduler here.
raw_env = ["SCHEDULED_TASKS_EMBEDDED=false"]
