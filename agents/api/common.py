from typing import Any, TypeVar

from tenants.errors import InvalidInput
from tenants.models import Tenant, TenantOwnedModel

M = TypeVar("M", bound=TenantOwnedModel)


def resolve(model: type[M], tenant: Tenant, public_id: Any, field: str) -> M:
    """The tenant's object named in a request body; anything else is a field error (400), so
    another tenant's id reads exactly like an unknown one."""
    found = None
    if isinstance(public_id, str):
        found = model.objects.for_tenant(tenant).filter(public_id=public_id).first()
    if found is None:
        label = model._meta.verbose_name
        raise InvalidInput.field(
            field, f"No {label} {public_id!r} in this account.", code="unknown_reference"
        )
    return found


def resolve_many(model: type[M], tenant: Tenant, public_ids: Any, field: str) -> list[M]:
    if not isinstance(public_ids, list):
        raise InvalidInput.field(field, "A list of ids.")
    found = {
        o.public_id: o for o in model.objects.for_tenant(tenant).filter(public_id__in=public_ids)
    }
    missing = [i for i in public_ids if i not in found]
    if missing:
        raise InvalidInput.field(
            field,
            f"No {model._meta.verbose_name_plural} {missing} in this account.",
            code="unknown_reference",
        )
    return [found[i] for i in public_ids]


def omit_unset(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}
