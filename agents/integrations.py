"""Kinds of integration: which credential fields each takes and how they authenticate requests."""

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CredentialField:
    name: str
    label: str
    secret: bool = False
    required: bool = True
    help: str = ""


# Headers (and query parameters) a credential adds to a request.
Auth = Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, str]]


@dataclass(frozen=True)
class IntegrationKind:
    kind: str
    label: str
    fields: tuple[CredentialField, ...]
    auth: Auth
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def config_fields(self) -> list[CredentialField]:
        return [f for f in self.fields if not f.secret]

    @property
    def secret_fields(self) -> list[CredentialField]:
        return [f for f in self.fields if f.secret]

    def problems(self, config: Any, secrets: Any) -> dict[str, list[str]]:
        """Field errors for `config` (plain settings) and `secrets`."""
        errors: dict[str, list[str]] = {}
        for name, given, expected in (
            ("config", config, self.config_fields),
            ("secrets", secrets, self.secret_fields),
        ):
            if not isinstance(given, dict):
                errors[name] = ["Must be an object."]
                continue
            known = {f.name for f in expected}
            for key in sorted(set(given) - known):
                errors.setdefault(f"{name}.{key}", []).append(
                    f"{self.label} takes no {name} field {key!r}"
                    + (f"; it takes: {', '.join(sorted(known))}." if known else ".")
                )
            for item in expected:
                value = given.get(item.name)
                if value is not None and not isinstance(value, str):
                    errors.setdefault(f"{name}.{item.name}", []).append("Must be a string.")
                elif value and not is_header_safe(value):
                    # Credentials travel in HTTP headers: plain ASCII, and never a line break
                    # that could smuggle in another header.
                    errors.setdefault(f"{name}.{item.name}", []).append(
                        "Use plain ASCII characters, without line breaks."
                    )
                elif item.required and not value:
                    errors.setdefault(f"{name}.{item.name}", []).append(
                        f"{item.label} is required."
                    )
        return errors


def is_header_safe(value: str) -> bool:
    return value.isascii() and value.isprintable()


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


BEARER = IntegrationKind(
    kind="bearer_token",
    label="Bearer token",
    description="Sends Authorization: Bearer <token>.",
    fields=(CredentialField("token", "Token", secret=True),),
    auth=lambda config, secrets: {"Authorization": f"Bearer {secrets['token']}"},
)
BASIC = IntegrationKind(
    kind="basic_auth",
    label="Basic authentication",
    description="Sends HTTP Basic credentials.",
    fields=(
        CredentialField("username", "User name"),
        CredentialField("password", "Password", secret=True),
    ),
    auth=lambda config, secrets: basic(config["username"], secrets["password"]),
)
API_KEY_HEADER = IntegrationKind(
    kind="api_key_header",
    label="API key in a header",
    description="Sends the key in a header you name, e.g. X-API-Key.",
    fields=(
        CredentialField("header_name", "Header name"),
        CredentialField("value", "Key", secret=True),
    ),
    auth=lambda config, secrets: {config["header_name"]: secrets["value"]},
)


def integration_kinds() -> dict[str, IntegrationKind]:
    from agents.connectors import CONNECTORS

    kinds = {k.kind: k for k in (BEARER, BASIC, API_KEY_HEADER)}
    kinds.update({c.integration.kind: c.integration for c in CONNECTORS.values()})
    return kinds
