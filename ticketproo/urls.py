from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from scheduled_tasks.views.health import health
from scheduled_tasks.views.metrics import metrics_view

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="scheduled_tasks:task_list"), name="home"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("tasks/", include("scheduled_tasks.urls")),
    path("api/scheduler/", include("scheduled_tasks.api.urls")),
    path("health/", health, name="health"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("metrics", metrics_view, name="metrics"),
]

# A URL no route matches: JSON under /api/, the site's page elsewhere.
handler404 = "scheduled_tasks.api.schema.not_found"
