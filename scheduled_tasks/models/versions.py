"""A task's code versions: every change of what it runs (code, function, parameters) is kept."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from scheduled_tasks.models.tasks import ScheduledTask


class TaskVersion(models.Model):
    """What a task ran from one change of its code (or function) to the next; written by
    ``services.save_task`` only, never edited."""

    task = models.ForeignKey(
        ScheduledTask,
        on_delete=models.CASCADE,
        related_name="versions",
        verbose_name="task",
        help_text="The task whose code this is.",
    )
    number = models.PositiveIntegerField(
        "number", help_text="1 for the task's first version, then 2, 3, ... per task."
    )
    code = models.TextField("code", blank=True, help_text="The Python snippet, as saved.")
    function_name = models.CharField(
        "registered function",
        max_length=200,
        blank=True,
        help_text="The registered function run instead of code, if any.",
    )
    function_params = models.JSONField(
        "function parameters",
        default=dict,
        blank=True,
        help_text="Keyword arguments for the registered function.",
    )
    note = models.CharField(
        "note",
        max_length=200,
        blank=True,
        help_text="How the version came about when not by an edit, e.g. “restored from v2”.",
    )
    created_at = models.DateTimeField("created at", help_text="When the change was saved.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="created by",
        help_text="Who saved the change (empty for imports and jobs without a user).",
    )

    class Meta:
        verbose_name = "task version"
        ordering = ["task", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["task", "number"], name="sched_version_task_number"),
        ]

    def __str__(self) -> str:
        return f"{self.task_id} v{self.number}"

    def same_content(self, task: ScheduledTask) -> bool:
        """Whether ``task`` (as it stands in memory) runs what this version runs."""
        return (
            self.code == task.code
            and self.function_name == task.function_name
            and (self.function_params or {}) == (task.function_params or {})
        )
