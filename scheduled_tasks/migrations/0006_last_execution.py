"""A task's last status becomes its last execution's: ``ScheduledTask.last_status`` (a copy
written by every run's record) gives way to the ``last_execution`` pointer set at each claim.

Each task is pointed at the run that last spoke for it: its latest execution (by created_at,
id) that is not a test run (test runs never changed the last status) nor a retry still waiting
to start (a retry moves the pointer when it starts, as it used to set the status).
"""

from django.db import migrations
from django.db.models import OuterRef, Q, Subquery


def _speaks_for_task(Execution):
    return Execution.objects.exclude(trigger="test").exclude(
        Q(trigger="retry") & Q(status="pending")
    )


def point_at_latest_execution(apps, schema_editor):
    ScheduledTask = apps.get_model("scheduled_tasks", "ScheduledTask")
    Execution = apps.get_model("scheduled_tasks", "Execution")
    latest = (
        _speaks_for_task(Execution)
        .filter(task=OuterRef("pk"))
        .order_by("-created_at", "-id")
        .values("pk")[:1]
    )
    ScheduledTask.objects.update(last_execution=Subquery(latest))
    if schema_editor.connection.vendor == "postgresql":
        # The deferred foreign-key checks of these updates now, or PostgreSQL refuses the
        # ALTER TABLE that follows in this transaction ("pending trigger events").
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        schema_editor.execute("SET CONSTRAINTS ALL DEFERRED")


def copy_status_back(apps, schema_editor):
    ScheduledTask = apps.get_model("scheduled_tasks", "ScheduledTask")
    Execution = apps.get_model("scheduled_tasks", "Execution")
    status = Execution.objects.filter(pk=OuterRef("last_execution")).values("status")[:1]
    ScheduledTask.objects.filter(last_execution__isnull=False).update(last_status=Subquery(status))


class Migration(migrations.Migration):
    dependencies = [
        ("scheduled_tasks", "0005_monitoring"),
    ]

    operations = [
        migrations.RunPython(point_at_latest_execution, copy_status_back, elidable=True),
        migrations.RemoveField(model_name="scheduledtask", name="last_status"),
    ]
