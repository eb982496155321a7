"""The pages at scale: indexes for a task's runs by outcome (the task page's counts and status
filter, newest first) and for all runs by outcome by id (the runs list's status filter, paged
by id), the trigger added to the index of ended runs (the dashboard's counts leave test runs
out from the index alone), and the table of the dashboard's precomputed chart figures."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("scheduled_tasks", "0008_task_versions"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ChartSnapshot",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=50, unique=True, verbose_name="name")),
                ("computed_at", models.DateTimeField(verbose_name="computed at")),
                ("data", models.JSONField(default=dict, verbose_name="figures")),
            ],
            options={
                "verbose_name": "chart snapshot",
            },
        ),
        migrations.RemoveIndex(
            model_name="execution",
            name="sched_exec_finished",
        ),
        migrations.AddIndex(
            model_name="execution",
            index=models.Index(
                fields=["task", "status", "created_at"], name="sched_exec_task_status"
            ),
        ),
        migrations.AddIndex(
            model_name="execution",
            index=models.Index(fields=["status", "id"], name="sched_exec_status_id"),
        ),
        migrations.AddIndex(
            model_name="execution",
            index=models.Index(
                condition=models.Q(("finished_at__isnull", False)),
                fields=["status", "finished_at", "trigger"],
                name="sched_exec_finished",
            ),
        ),
    ]
