from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants and access"

    def ready(self) -> None:
        # Registers the deployment checks (switchboard.E001…) with Django's check framework.
        from config import checks  # noqa: F401
