from django.apps import AppConfig


class WorkersConfig(AppConfig):
    """The live fleet: call sessions, carrier and model adapters, the tool runtime."""

    name = "workers"
