from django.urls import path
from rest_framework.routers import SimpleRouter

from tenants.api import views

router = SimpleRouter(trailing_slash=False)
router.register("members", views.MemberViewSet, basename="member")
router.register("invitations", views.InvitationViewSet, basename="invitation")
router.register("api-keys", views.ApiKeyViewSet, basename="api-key")
router.register("audit-events", views.AuditEventViewSet, basename="audit-event")

urlpatterns = [
    path("", views.RootView.as_view(), name="api-root"),
    path("tenant", views.CurrentTenantView.as_view(), name="tenant"),
    *router.urls,
]
