"""``ScheduledTask.last_failed``: whether the task's latest run failed, timed out or was
abandoned, and the partial index of the tasks failing now. Existing tasks get it from their
latest run."""

from django.conf import settings
from django.db import migrations, models

FAILING = ("failed", "timeout", "abandoned")


def from_the_latest_runs(apps, schema_editor):
    task = apps.get_model("scheduled_tasks", "ScheduledTask")
    task.objects.filter(last_execution__status__in=FAILING).update(last_failed=True)


class Migration(migrations.Migration):
    dependencies = [
        ("scheduled_tasks", "0010_task_queue"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="scheduledtask",
            name="last_failed",
            field=models.BooleanField(
                default=False,
                editable=False,
                help_text="Whether the task's most recent run failed, timed out or was abandoned.",
                verbose_name="last run failed",
            ),
        ),
        migrations.AddIndex(
            model_name="scheduledtask",
            index=models.Index(
                condition=models.Q(("last_failed", True)),
                fields=["-last_run_at", "id"],
                name="sched_task_failing",
            ),
        ),
        migrations.RunPython(from_the_latest_runs, migrations.RunPython.noop),
    ]
