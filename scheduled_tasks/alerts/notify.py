"""Alert notifications: an outbox of ``AlertNotification`` rows and the sender that empties it.

Opening or resolving an alert only inserts rows (one per configured channel) in the same
transaction; nothing is sent on the runner's path. A background ``Sender`` thread, one per
process (runners and web processes), claims due rows with a compare-and-set on
``next_attempt_at`` (two processes never send the same row), sends them, and either marks
them sent or schedules the next attempt with a doubling backoff. After
``ALERT_WEBHOOK_RETRIES`` retries a row is given up (``next_attempt_at`` empty, no
``sent_at``) and keeps its last error. A process that dies while sending leaves its claim to
expire: the row is tried again (at least once delivery).

Webhook: ``POST ALERT_WEBHOOK_URL`` with ``{"event": "opened"|"resolved", "alert": {...}}``
as JSON, ``ALERT_WEBHOOK_TIMEOUT_SECONDS`` per request; any 2xx answer is a success.
E-mail: Django's ``send_mail`` to ``ALERT_EMAILS``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, InterfaceError, close_old_connections, connections
from django.db.models import F
from django.utils import timezone

from scheduled_tasks import conf
from scheduled_tasks.models import Alert, AlertNotification
from scheduled_tasks.threads import running_here

log = logging.getLogger("scheduled_tasks.alerts")

Channel = AlertNotification.Channel
Event = AlertNotification.Event

BACKOFF_INITIAL_SECONDS = 30
BACKOFF_MAX_SECONDS = 3600
# A claimed row is out of other senders' reach this long beyond the send's own timeout.
CLAIM_MARGIN_SECONDS = 60
# Rows one pass of the sender takes at most.
BATCH = 20
# How often the sender thread looks for due rows when nobody wakes it.
POLL_SECONDS = 10.0


class DeliveryError(Exception):
    """A notification could not be delivered; the message says why."""


def channels() -> list[str]:
    """The configured channels: e-mail if ``ALERT_EMAILS``, webhook if ``ALERT_WEBHOOK_URL``."""
    found = []
    if conf.get("ALERT_EMAILS"):
        found.append(Channel.EMAIL)
    if conf.get("ALERT_WEBHOOK_URL"):
        found.append(Channel.WEBHOOK)
    return found


def enqueue(alert: Alert, event: str, now: datetime) -> list[AlertNotification]:
    """Queue ``event`` of ``alert`` for every configured channel, due at once."""
    rows = [
        AlertNotification(
            alert=alert, channel=channel, event=event, created_at=now, next_attempt_at=now
        )
        for channel in channels()
    ]
    return AlertNotification.objects.bulk_create(rows) if rows else []


def backoff_seconds(attempts: int) -> float:
    """The wait after failed attempt number ``attempts`` (1, 2, ...): 30 s, 60 s, ... 1 h."""
    return float(min(BACKOFF_MAX_SECONDS, BACKOFF_INITIAL_SECONDS * 2 ** max(0, attempts - 1)))


def payload(alert: Alert, event: str) -> dict[str, Any]:
    """The webhook's JSON body."""
    task = alert.task
    return {
        "event": event,
        "alert": {
            "id": alert.pk,
            "kind": alert.kind,
            "status": alert.status,
            "key": alert.key,
            "message": alert.message,
            "task_id": alert.task_id,
            "task_name": task.name if task is not None else None,
            "execution_id": alert.execution_id,
            "opened_at": alert.opened_at,
            "resolved_at": alert.resolved_at,
            "details": alert.details,
        },
    }


def _post(url: str, body: bytes, timeout: float) -> None:
    if not url.lower().startswith(("http://", "https://")):
        raise DeliveryError(f"ALERT_WEBHOOK_URL is not an http(s) URL: {url!r}")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "TicketProo-alerts/1"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status = response.status
            response.read(65536)
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"{type(reason).__name__}: {reason}") from exc
    if not 200 <= status < 300:
        raise DeliveryError(f"HTTP {status}")


def send_webhook(alert: Alert, event: str) -> None:
    body = json.dumps(payload(alert, event), cls=DjangoJSONEncoder).encode()
    _post(conf.get("ALERT_WEBHOOK_URL"), body, float(conf.get("ALERT_WEBHOOK_TIMEOUT_SECONDS")))


def email_subject(alert: Alert, event: str) -> str:
    first_line = alert.message.splitlines()[0] if alert.message else alert.key
    verb = "resolved" if event == Event.RESOLVED else "opened"
    return f"[TicketProo] Alert {verb}: {first_line}"[:200]


def email_body(alert: Alert, event: str) -> str:
    lines = [
        alert.message,
        "",
        f"Alert {alert.pk} ({alert.get_kind_display()}), {alert.status}.",
        f"Condition: {alert.key}",
        f"Opened at: {alert.opened_at.isoformat()}",
    ]
    if alert.resolved_at is not None:
        lines.append(f"Resolved at: {alert.resolved_at.isoformat()} ({alert.resolution})")
    if alert.details:
        lines += ["", json.dumps(alert.details, cls=DjangoJSONEncoder, indent=2, sort_keys=True)]
    return "\n".join(lines) + "\n"


def send_email(alert: Alert, event: str) -> None:
    recipients = list(conf.get("ALERT_EMAILS") or [])
    if not recipients:
        raise DeliveryError("ALERT_EMAILS is empty")
    try:
        send_mail(email_subject(alert, event), email_body(alert, event), None, recipients)
    except Exception as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc


SENDERS: dict[str, Callable[[Alert, str], None]] = {
    Channel.EMAIL: send_email,
    Channel.WEBHOOK: send_webhook,
}


def claim(notification_id: int, seen: datetime, now: datetime) -> bool:
    """Take a due row: compare-and-set its ``next_attempt_at`` from what we saw to the end
    of our claim. True if it is ours to send."""
    until = now + timedelta(
        seconds=float(conf.get("ALERT_WEBHOOK_TIMEOUT_SECONDS")) + CLAIM_MARGIN_SECONDS
    )
    return bool(
        AlertNotification.objects.filter(pk=notification_id, next_attempt_at=seen).update(
            next_attempt_at=until, attempts=F("attempts") + 1
        )
    )


def send_one(notification: AlertNotification, now: datetime) -> bool:
    """Send a claimed row and record the outcome; True if it was delivered."""
    try:
        SENDERS[notification.channel](notification.alert, notification.event)
    except Exception as exc:
        error = str(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}"
        retries = int(conf.get("ALERT_WEBHOOK_RETRIES"))
        if notification.attempts > retries:
            next_attempt = None
            log.error(
                "alert %s: %s notification given up after %d attempt(s): %s",
                notification.alert_id,
                notification.channel,
                notification.attempts,
                error,
            )
        else:
            next_attempt = now + timedelta(seconds=backoff_seconds(notification.attempts))
            log.warning(
                "alert %s: %s notification failed (attempt %d), retrying at %s: %s",
                notification.alert_id,
                notification.channel,
                notification.attempts,
                next_attempt.isoformat(),
                error,
            )
        AlertNotification.objects.filter(pk=notification.pk).update(
            next_attempt_at=next_attempt, last_error=error[:2000]
        )
        return False
    AlertNotification.objects.filter(pk=notification.pk).update(
        next_attempt_at=None, sent_at=now, last_error=""
    )
    return True


def send_due(
    now: datetime, *, limit: int = BATCH, should_stop: Callable[[], bool] = lambda: False
) -> int:
    """One pass of the sender: claim and send up to ``limit`` due rows (``should_stop`` is
    asked before each). Returns how many it claimed (sent or not)."""
    due = list(
        AlertNotification.objects.filter(next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", "next_attempt_at")[:limit]
    )
    claimed = 0
    for pk, seen in due:
        if should_stop():
            break
        if not claim(pk, seen, now):
            continue  # another sender took it
        claimed += 1
        notification = AlertNotification.objects.select_related("alert__task").filter(pk=pk)
        found = notification.first()
        if found is not None:  # (its alert may have gone with its task meanwhile)
            send_one(found, now)
    return claimed


# -- the sender thread ----------------------------------------------------------------------


class Sender:
    """A daemon thread that sends due notifications every ``poll`` seconds, or at once when
    woken (an alert opened or resolved in this process)."""

    def __init__(
        self, *, poll: float = POLL_SECONDS, clock: Callable[[], datetime] = timezone.now
    ) -> None:
        self.poll = poll
        self._clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pid = os.getpid()
        self._thread: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        return running_here(self._pid, self._thread, self._stop)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="scheduled-tasks-alert-sender", daemon=True
        )
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, wait: float = 2.0) -> None:
        """Stop after the notification being sent, if any (waiting up to ``wait`` s)."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(wait)

    def step(self) -> int:
        """Send until nothing is due (or a batch could not be claimed); never raises."""
        total = 0
        try:
            while not self._stop.is_set():
                claimed = send_due(self._clock(), should_stop=self._stop.is_set)
                total += claimed
                if claimed < BATCH:
                    break
        except (DatabaseError, InterfaceError) as exc:
            log.warning("alert sender: database unavailable: %s", exc)
            with contextlib.suppress(Exception):
                connections["default"].close()
        except Exception:
            log.exception("alert sender: pass failed")
        return total

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._wake.clear()
                self.step()
                with contextlib.suppress(Exception):
                    close_old_connections()
                self._wake.wait(self.poll)
        finally:
            connections.close_all()  # this thread's connections only


_lock = threading.Lock()
_sender: Sender | None = None


def start_sender() -> Sender | None:
    """This process's sender, started if a channel is configured (None otherwise)."""
    global _sender
    if not channels():
        return None
    with _lock:
        if _sender is None or not _sender.alive:
            _sender = Sender()
            _sender.start()
        return _sender


def stop_sender(wait: float | None = None) -> None:
    """Stop this process's sender, letting a send in progress end (by default up to the
    webhook timeout and a second): a process about to exit does not leave it half done."""
    global _sender
    if wait is None:
        wait = float(conf.get("ALERT_WEBHOOK_TIMEOUT_SECONDS")) + 1.0
    with _lock:
        sender, _sender = _sender, None
    if sender is not None:
        sender.stop(wait)


def wake() -> None:
    """Have this process's sender look for due rows now (no-op without one)."""
    sender = _sender
    if sender is not None and sender.alive:
        sender.wake()
