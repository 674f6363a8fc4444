from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants and access"

    def ready(self) -> None:
        # Registers the deployment checks (switchboard.E001…) with Django's check framework.
        from config import checks  # noqa: F401
        from tenants import rls

        # After every migrate, as the tables' owner: row-level security on every tenant-owned
        # table (new ones included) and the application role's grants.
        post_migrate.connect(rls.install, sender=self, dispatch_uid="tenants.rls.install")
