"""Figures computed ahead of the pages that show them."""

from __future__ import annotations

from django.db import models


class ChartSnapshot(models.Model):
    """The dashboard's chart figures as last computed (``scheduled_tasks.chart_snapshot``):
    counting a month of runs takes a second with a million of them, so the runners' monitors
    compute them every few minutes and the page reads one row."""

    name = models.CharField("name", max_length=50, unique=True)
    computed_at = models.DateTimeField("computed at")
    data = models.JSONField("figures", default=dict)

    class Meta:
        verbose_name = "chart snapshot"

    def __str__(self) -> str:
        return f"{self.name} ({self.computed_at:%Y-%m-%d %H:%M})"
