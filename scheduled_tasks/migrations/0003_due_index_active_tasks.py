# The due index becomes partial on active tasks, so SQLite (and PostgreSQL) use it for
# ``WHERE "is_active" AND "next_run_at" ...`` without planner statistics (no ANALYZE).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("scheduled_tasks", "0002_engine"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="scheduledtask",
            name="sched_task_due",
        ),
        migrations.AddIndex(
            model_name="scheduledtask",
            index=models.Index(
                condition=models.Q(("is_active", True)),
                fields=["next_run_at"],
                name="sched_task_active_due",
            ),
        ),
    ]
