"""The two roles of the scheduler's pages, as groups an administrator adds people to.

"Task viewers" see everything and change nothing: tasks, their code and their runs can hold
secrets, so reading them needs a permission. "Task editors" also create, edit, delete, run
and cancel tasks, and acknowledge alerts.

The permissions are created here first: on a fresh database Django makes them only after
all migrations (``post_migrate``), too late for this one.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

APP = "scheduled_tasks"
VIEWERS = "Task viewers"
EDITORS = "Task editors"
EDITOR_EXTRA = (
    "add_scheduledtask",
    "change_scheduledtask",
    "delete_scheduledtask",
    "run_scheduledtask",
    "change_alert",
)


def ensure_permissions(apps, schema_editor):
    """The app's permissions as of this migration's models (idempotent)."""
    app_config = apps.get_app_config(APP)
    app_config.models_module = True  # the state's app config has none; create_permissions asks
    try:
        create_permissions(app_config, verbosity=0, using=schema_editor.connection.alias, apps=apps)
    finally:
        app_config.models_module = None


def _view_codenames(apps):
    return [f"view_{model._meta.model_name}" for model in apps.get_app_config(APP).get_models()]


def create_groups(apps, schema_editor):
    ensure_permissions(apps, schema_editor)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    app_perms = Permission.objects.filter(content_type__app_label=APP)
    viewing = list(app_perms.filter(codename__in=_view_codenames(apps)))
    editing = list(app_perms.filter(codename__in=EDITOR_EXTRA))
    viewers, _ = Group.objects.get_or_create(name=VIEWERS)
    viewers.permissions.add(*viewing)
    editors, _ = Group.objects.get_or_create(name=EDITORS)
    editors.permissions.add(*viewing, *editing)


def delete_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.filter(name__in=[VIEWERS, EDITORS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("scheduled_tasks", "0006_last_execution"),
    ]

    operations = [
        migrations.RunPython(create_groups, delete_groups),
    ]
