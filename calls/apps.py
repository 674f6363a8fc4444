from django.apps import AppConfig


class CallsConfig(AppConfig):
    """Call records, their events, recordings and outcomes; the post-call pipeline."""

    name = "calls"
