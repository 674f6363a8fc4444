from typing import Any

from django.core.management.base import BaseCommand

from tenants.rls import rls_bypass


class OperatorCommand(BaseCommand):
    """A management command: operator work across tenants, so it bypasses row-level security
    and the log says which command did."""

    def execute(self, *args: Any, **options: Any) -> Any:
        with rls_bypass(f"manage.py {self.__module__.rsplit('.', 1)[-1]}"):
            return super().execute(*args, **options)
