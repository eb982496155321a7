"""Code versions: ``TaskVersion`` keeps every change of a task's code or function, the task
points at the one it runs (``current_version``) and each run at the one it ran (``version``).

Each existing task gets its version 1 (its code as it stands, by whoever last changed it) and
points at it; runs from before are left without a version: what they ran is not known.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

VIEWERS = "Task viewers"
EDITORS = "Task editors"


def first_versions(apps, schema_editor):
    ScheduledTask = apps.get_model("scheduled_tasks", "ScheduledTask")
    TaskVersion = apps.get_model("scheduled_tasks", "TaskVersion")
    tasks = ScheduledTask.objects.filter(current_version__isnull=True).only(
        "pk", "code", "function_name", "function_params", "updated_at", "updated_by"
    )
    for task in tasks.iterator(chunk_size=1000):
        version = TaskVersion.objects.create(
            task_id=task.pk,
            number=1,
            code=task.code,
            function_name=task.function_name,
            function_params=task.function_params or {},
            created_at=task.updated_at,
            created_by_id=task.updated_by_id,
        )
        ScheduledTask.objects.filter(pk=task.pk).update(current_version=version)


def grant_viewing_versions(apps, schema_editor):
    """Both roles of 0007 may read versions (the permission is created here first: on a fresh
    database Django makes it only after all migrations)."""
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config("scheduled_tasks")
    app_config.models_module = True
    try:
        create_permissions(app_config, verbosity=0, using=schema_editor.connection.alias, apps=apps)
    finally:
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view = Permission.objects.get(
        content_type__app_label="scheduled_tasks", codename="view_taskversion"
    )
    for group in Group.objects.filter(name__in=[VIEWERS, EDITORS]):
        group.permissions.add(view)


class Migration(migrations.Migration):
    dependencies = [
        ("scheduled_tasks", "0007_roles"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="TaskVersion",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "number",
                    models.PositiveIntegerField(
                        help_text="1 for the task's first version, then 2, 3, ... per task.",
                        verbose_name="number",
                    ),
                ),
                (
                    "code",
                    models.TextField(
                        blank=True, help_text="The Python snippet, as saved.", verbose_name="code"
                    ),
                ),
                (
                    "function_name",
                    models.CharField(
                        blank=True,
                        help_text="The registered function run instead of code, if any.",
                        max_length=200,
                        verbose_name="registered function",
                    ),
                ),
                (
                    "function_params",
                    models.JSONField(
                        blank=True,
                        default=dict,
                        help_text="Keyword arguments for the registered function.",
                        verbose_name="function parameters",
                    ),
                ),
                (
                    "note",
                    models.CharField(
                        blank=True,
                        help_text="How the version came about when not by an edit, e.g. “restored from v2”.",
                        max_length=200,
                        verbose_name="note",
                    ),
                ),
                (
                    "created_at",
                    models.DateTimeField(
                        help_text="When the change was saved.", verbose_name="created at"
                    ),
                ),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        help_text="Who saved the change (empty for imports and jobs without a user).",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="created by",
                    ),
                ),
                (
                    "task",
                    models.ForeignKey(
                        help_text="The task whose code this is.",
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="versions",
                        to="scheduled_tasks.scheduledtask",
                        verbose_name="task",
                    ),
                ),
            ],
            options={
                "verbose_name": "task version",
                "ordering": ["task", "-number"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("task", "number"), name="sched_version_task_number"
                    ),
                ],
            },
        ),
        migrations.AddField(
            model_name="execution",
            name="version",
            field=models.ForeignKey(
                blank=True,
                editable=False,
                help_text="The version of the task's code this run ran (empty for test runs and runs from before versions were kept).",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="executions",
                to="scheduled_tasks.taskversion",
                verbose_name="version",
            ),
        ),
        migrations.AddField(
            model_name="scheduledtask",
            name="current_version",
            field=models.ForeignKey(
                blank=True,
                editable=False,
                help_text="The version of the code (or function) the task runs now; set by each save that changes it. A claim copies it onto the run it creates.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="scheduled_tasks.taskversion",
                verbose_name="current version",
            ),
        ),
        migrations.RunPython(first_versions, migrations.RunPython.noop, elidable=True),
        migrations.RunPython(grant_viewing_versions, migrations.RunPython.noop),
    ]
