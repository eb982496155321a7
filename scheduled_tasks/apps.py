from django.apps import AppConfig


class ScheduledTasksConfig(AppConfig):
    name = "scheduled_tasks"
    verbose_name = "Scheduled tasks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from scheduled_tasks import checks  # noqa: F401  (registers the system checks)
        from scheduled_tasks.discovery import autodiscover

        autodiscover()  # registers every app's jobs.py functions
