from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants and access"

    def ready(self) -> None:
        # Registers the deployment checks (switchboard.E001…) with Django's check framework.
        from config import checks, dbpool  # noqa: F401
        from tenants import rls

        connection_created.connect(dbpool.install, dispatch_uid="config.dbpool.install")

        # After every migrate, as the tables' owner: row-level security on every tenant-owned
        # table (new ones included) and the application role's grants.
        post_migrate.connect(rls.install, sender=self, dispatch_uid="tenants.rls.install")
