from django.urls import path

from scheduled_tasks import run_views, views

app_name = "scheduled_tasks"

urlpatterns = [
    path("", views.task_list, name="task_list"),
    path("new/", views.task_create, name="task_create"),
    path("schedule-preview/", views.schedule_preview, name="schedule_preview"),
    path("test-run/", run_views.test_run, name="test_run"),
    path("<int:pk>/", views.task_detail, name="task_detail"),
    path("<int:pk>/edit/", views.task_edit, name="task_edit"),
    path("<int:pk>/toggle/", views.task_toggle, name="task_toggle"),
    path("<int:pk>/run/", run_views.task_run, name="task_run"),
    path("executions/<int:pk>/", views.execution_detail, name="execution_detail"),
]
