from django.urls import path
from rest_framework.routers import SimpleRouter

from billing.api import views

router = SimpleRouter(trailing_slash=False)
router.register("billing/usage", views.UsageEventViewSet, basename="usage-event")
router.register("billing/invoices", views.InvoiceViewSet, basename="invoice")
router.register("billing/credit-notes", views.CreditNoteViewSet, basename="credit-note")

urlpatterns = [
    path("billing", views.BillingView.as_view(), name="billing"),
    path("billing/plan", views.PlanView.as_view(), name="billing-plan"),
    path("billing/plans", views.PlanListView.as_view(), name="billing-plans"),
    path("billing/preview", views.PreviewView.as_view(), name="billing-preview"),
    *router.urls,
]
