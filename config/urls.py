from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config import views

api_patterns: list[URLPattern | URLResolver] = [
    path("schema", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its script as a file, so the page keeps the CSP without inline code.
    path("docs", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("tenants.api.urls")),
    path("", include("agents.api.urls")),
    path("", include("calls.api.urls")),
    path("", include("billing.api.urls")),
]

urlpatterns = [
    path("", include("tenants.urls")),
    path("", include("console.urls")),
    path("", include("workers.urls")),
    path("", include("billing.urls")),
    path("admin/", admin.site.urls),
    path("v1/", include(api_patterns)),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
]

handler404 = "config.views.not_found"
handler500 = "config.views.server_error"
