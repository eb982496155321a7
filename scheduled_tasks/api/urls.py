"""``/api/scheduler/``: the scheduler's REST API (schema at ``/api/schema/``)."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from scheduled_tasks.api.alerts import AlertViewSet
from scheduled_tasks.api.executions import ExecutionViewSet
from scheduled_tasks.api.running import DefinitionViewSet, TestRunView
from scheduled_tasks.api.statistics import StatisticsViewSet
from scheduled_tasks.api.tasks import TaskViewSet

app_name = "scheduler_api"

router = DefaultRouter()
router.register("scheduled", TaskViewSet, basename="task")
router.register("definitions", DefinitionViewSet, basename="definition")
router.register("executions", ExecutionViewSet, basename="execution")
router.register("alerts", AlertViewSet, basename="alert")
router.register("statistics", StatisticsViewSet, basename="statistics")

urlpatterns = [path("test_run/", TestRunView.as_view(), name="test-run"), *router.urls]
