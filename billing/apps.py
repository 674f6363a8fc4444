from django.apps import AppConfig


class BillingConfig(AppConfig):
    """The usage ledger, plans and prices, invoices and Stripe sync."""

    name = "billing"
