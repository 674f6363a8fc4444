from typing import Any

from django.db import transaction

from tenants.encryption import encrypted_fields
from tenants.management.operator import OperatorCommand


class Command(OperatorCommand):
    help = (
        "Re-encrypt every stored secret with the first key in FIELD_ENCRYPTION_KEYS. Run it after "
        "prepending a new key; once it has finished, older keys can be removed."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        for model, field in encrypted_fields():
            count = 0
            # Operator maintenance across every tenant, row by row in small transactions.
            rows = model._base_manager.exclude(**{field.attname: None}).values_list(
                "pk", field.attname
            )
            for pk, value in rows.iterator(chunk_size=200):
                with transaction.atomic():
                    model._base_manager.filter(pk=pk).update(**{field.attname: value})
                count += 1
            self.stdout.write(f"{model._meta.label}.{field.name}: {count} re-encrypted")
