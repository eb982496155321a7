from django.urls import path

from scheduled_tasks.views import dashboard, executions, live, runs, task_actions, tasks, versions

app_name = "scheduled_tasks"

urlpatterns = [
    path("", tasks.task_list, name="task_list"),
    path("new/", tasks.task_create, name="task_create"),
    path("bulk/", task_actions.task_bulk, name="task_bulk"),
    path("schedule-preview/", tasks.schedule_preview, name="schedule_preview"),
    path("test-run/", runs.test_run, name="test_run"),
    path("<int:pk>/", tasks.task_detail, name="task_detail"),
    path("<int:pk>/edit/", tasks.task_edit, name="task_edit"),
    path("<int:pk>/toggle/", tasks.task_toggle, name="task_toggle"),
    path("<int:pk>/duplicate/", task_actions.task_duplicate, name="task_duplicate"),
    path("<int:pk>/delete/", task_actions.task_delete, name="task_delete"),
    path("<int:pk>/run/", runs.task_run, name="task_run"),
    path("<int:pk>/versions/", versions.task_versions, name="task_versions"),
    path(
        "<int:pk>/versions/<int:number>/restore/",
        versions.version_restore,
        name="version_restore",
    ),
    path("dashboard/", dashboard.dashboard_page, name="dashboard"),
    path("dashboard/live/", dashboard.dashboard_live, name="dashboard_live"),
    path("executions/", executions.execution_list, name="execution_list"),
    path("executions/<int:pk>/", runs.execution_detail, name="execution_detail"),
    path("executions/<int:pk>/cancel/", runs.execution_cancel, name="execution_cancel"),
    path("executions/<int:pk>/live/", live.execution_live, name="execution_live"),
]
