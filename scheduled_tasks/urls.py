from django.urls import path

from scheduled_tasks.views import runs, tasks

app_name = "scheduled_tasks"

urlpatterns = [
    path("", tasks.task_list, name="task_list"),
    path("new/", tasks.task_create, name="task_create"),
    path("schedule-preview/", tasks.schedule_preview, name="schedule_preview"),
    path("test-run/", runs.test_run, name="test_run"),
    path("<int:pk>/", tasks.task_detail, name="task_detail"),
    path("<int:pk>/edit/", tasks.task_edit, name="task_edit"),
    path("<int:pk>/toggle/", tasks.task_toggle, name="task_toggle"),
    path("<int:pk>/run/", runs.task_run, name="task_run"),
    path("executions/<int:pk>/", runs.execution_detail, name="execution_detail"),
    path("executions/<int:pk>/cancel/", runs.execution_cancel, name="execution_cancel"),
]
