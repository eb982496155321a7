app_name = "scheduled_tasks"

urlpatterns: list = []
