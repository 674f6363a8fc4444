"""Every change to agents, prompts, tools, knowledge and numbers goes through these modules.

As in tenants.services: each function checks the actor's permission, changes state in one
transaction, writes an audit event and raises tenants.errors on bad input, changing nothing.
"""

from collections.abc import Callable
from typing import Any, TypeVar

from django.db import IntegrityError, transaction

from tenants.access import Actor
from tenants.errors import InvalidInput
from tenants.services import audit_event_record


def invalid(
    problems: list[tuple[str, str]], summary: str, *, code: str | None = None
) -> InvalidInput:
    """One error carrying every problem found, each under its field."""
    errors: dict[str, list[str]] = {}
    for field, message in problems:
        errors.setdefault(field, []).append(message)
    detail = problems[0][1] if len(problems) == 1 else f"{summary} ({len(problems)} problems)."
    return InvalidInput(detail, errors=errors, code=code)


def require_name(value: Any, field: str = "name", limit: int = 100) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput.field(field, "A name is required.")
    value = value.strip()
    if len(value) > limit:
        raise InvalidInput.field(field, f"At most {limit} characters.")
    return value


Credentialed = TypeVar("Credentialed", bound=Any)


def credentials_update(
    record: Credentialed,
    *,
    actor: Actor,
    action: str,
    check: Callable[[dict[str, Any], dict[str, Any]], None],
    name: str | None = None,
    config: Any = None,
    secrets: Any = None,
) -> Credentialed:
    """Rename a record holding credentials (an integration, a carrier account), change its
    settings, or replace some of its secret fields while keeping the others. The result is
    checked as a whole by `check(config, secrets)`, which raises on problems."""
    new_name = record.name if name is None else require_name(name)
    new_config = {**record.config, **(config or {})}
    new_secrets = {**record.secrets, **(secrets or {})}
    check(new_config, new_secrets)
    changes: dict[str, list[Any]] = {}
    if new_name != record.name:
        changes["name"] = [record.name, new_name]
    if new_config != record.config:
        changes["config"] = [record.config, new_config]
    if secrets:
        changes["secrets"] = [None, sorted(secrets)]  # which were replaced; never their values
    if not changes:
        return record
    record.name, record.config, record.secrets = new_name, new_config, new_secrets
    try:
        with transaction.atomic():
            record.save()
            audit_event_record(actor=actor, action=action, target=record, changes=changes)
    except IntegrityError:
        raise InvalidInput.field("name", f"The name {new_name!r} is taken.") from None
    return record
