"""Alerts: a condition someone should hear about, open until it clears or is resolved."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from scheduled_tasks.models.executions import Execution
from scheduled_tasks.models.tasks import ScheduledTask


class Alert(models.Model):
    class Kind(models.TextChoices):
        FAILURES = "failures", "Failed several times in a row"
        LONG_RUN = "long_run", "Run going on too long"
        MISSED = "missed", "Missed schedule"
        SCHEDULER_DOWN = "scheduler_down", "Scheduler down"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"

    kind = models.CharField("kind", max_length=20, choices=Kind.choices)
    status = models.CharField("status", max_length=10, choices=Status.choices, default=Status.OPEN)
    key = models.CharField(
        "condition",
        max_length=200,
        help_text="What the alert is about (kind and subject); at most one open alert per key.",
    )
    task = models.ForeignKey(
        ScheduledTask,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="alerts",
        verbose_name="task",
    )
    execution = models.ForeignKey(
        Execution,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="execution",
        help_text="The run the alert is about, where there is one.",
    )
    message = models.TextField("message", help_text="What happened, for people.")
    details = models.JSONField("details", default=dict, blank=True)
    opened_at = models.DateTimeField("opened at")
    resolved_at = models.DateTimeField("resolved at", null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="resolved by",
        help_text="Who resolved it by hand (empty when it resolved itself).",
    )
    resolution = models.CharField(
        "resolution",
        max_length=200,
        blank=True,
        help_text="Why it was resolved: the condition cleared, or by hand.",
    )

    class Meta:
        ordering = ["-opened_at", "-id"]
        indexes = [
            models.Index(fields=["status", "-opened_at"], name="sched_alert_status"),
            models.Index(fields=["task", "status"], name="sched_alert_task"),
        ]
        constraints = [
            # Never two open alerts for one condition, whoever checks at the same moment.
            models.UniqueConstraint(
                fields=["key"], condition=models.Q(status="open"), name="sched_alert_one_open"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.message[:80]}"


class AlertNotification(models.Model):
    """One message to send about an alert (opened or resolved) through one channel: an
    outbox, so sending happens apart from the runner and survives a restart."""

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook"

    class Event(models.TextChoices):
        OPENED = "opened", "Opened"
        RESOLVED = "resolved", "Resolved"

    alert = models.ForeignKey(
        Alert, on_delete=models.CASCADE, related_name="notifications", verbose_name="alert"
    )
    channel = models.CharField("channel", max_length=10, choices=Channel.choices)
    event = models.CharField("event", max_length=10, choices=Event.choices)
    created_at = models.DateTimeField("created at")
    attempts = models.PositiveSmallIntegerField("attempts", default=0)
    next_attempt_at = models.DateTimeField(
        "next attempt", null=True, blank=True, help_text="Empty once sent or given up."
    )
    sent_at = models.DateTimeField("sent at", null=True, blank=True)
    last_error = models.TextField("last error", blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["next_attempt_at"], name="sched_alert_outbox")]

    def __str__(self) -> str:
        return f"{self.alert_id} {self.event} via {self.channel}"
