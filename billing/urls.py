from django.urls import path

from billing import views

urlpatterns = [
    path("webhooks/stripe", views.stripe_webhook, name="stripe-webhook"),
]
