from django.urls import path
from rest_framework.routers import SimpleRouter

from tenants.api import views
from tenants.api.webhooks import WebhookDeliveryViewSet, WebhookEndpointViewSet

router = SimpleRouter(trailing_slash=False)
router.register("members", views.MemberViewSet, basename="member")
router.register("invitations", views.InvitationViewSet, basename="invitation")
router.register("api-keys", views.ApiKeyViewSet, basename="api-key")
router.register("audit-events", views.AuditEventViewSet, basename="audit-event")
router.register("webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")

urlpatterns = [
    path("", views.RootView.as_view(), name="api-root"),
    path("tenant", views.CurrentTenantView.as_view(), name="tenant"),
    *router.urls,
]
