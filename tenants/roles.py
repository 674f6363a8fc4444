"""Roles and the permission matrix.

The matrix is written once, in docs/roles.md, and read from there at import: the documentation
and the behaviour cannot drift apart.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


class Role(models.TextChoices):
    OWNER = "owner"
    ADMIN = "admin"
    EDITOR = "editor"
    FINANCE = "finance"
    VIEWER = "viewer"


MATRIX_PATH = Path(settings.BASE_DIR) / "docs" / "roles.md"
_PERMISSION = re.compile(r"^`([a-z_]+:[a-z_]+)`$")


@dataclass(frozen=True)
class PermissionMatrix:
    by_role: dict[str, frozenset[str]]
    key_scopes: frozenset[str]
    descriptions: dict[str, str]

    @property
    def permissions(self) -> frozenset[str]:
        return frozenset(self.descriptions)


def parse_matrix(text: str) -> PermissionMatrix:
    """Parse the permission table under `## Permission matrix`; anything unexpected is an error."""
    section = text.split("## Permission matrix", 1)
    if len(section) != 2:
        raise ImproperlyConfigured("docs/roles.md has no '## Permission matrix' section")
    rows = [line.strip() for line in section[1].splitlines() if line.strip().startswith("|")]
    if len(rows) < 3:
        raise ImproperlyConfigured("docs/roles.md: the permission matrix has no rows")
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    expected = ["permission", *Role.values, "key scope", "what it allows"]
    if header != expected:
        raise ImproperlyConfigured(f"docs/roles.md: matrix header must be {expected}, got {header}")

    by_role: dict[str, set[str]] = {role: set() for role in Role.values}
    key_scopes: set[str] = set()
    descriptions: dict[str, str] = {}
    for row in rows[2:]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        if len(cells) != len(expected):
            raise ImproperlyConfigured(f"docs/roles.md: row has {len(cells)} cells: {row}")
        match = _PERMISSION.match(cells[0])
        if not match:
            raise ImproperlyConfigured(f"docs/roles.md: bad permission name {cells[0]!r}")
        permission = match.group(1)
        if permission in descriptions:
            raise ImproperlyConfigured(f"docs/roles.md: {permission} appears twice")
        role_cells, key_cell = cells[1 : 1 + len(Role.values)], cells[1 + len(Role.values)]
        for cell in [*role_cells, key_cell]:
            if cell not in ("yes", "-"):
                raise ImproperlyConfigured(
                    f"docs/roles.md: {permission} has {cell!r}; cells are 'yes' or '-'"
                )
        for role, cell in zip(Role.values, role_cells, strict=True):
            if cell == "yes":
                by_role[role].add(permission)
        if key_cell == "yes":
            key_scopes.add(permission)
        descriptions[permission] = cells[-1]
    return PermissionMatrix(
        by_role={role: frozenset(perms) for role, perms in by_role.items()},
        key_scopes=frozenset(key_scopes),
        descriptions=descriptions,
    )


MATRIX = parse_matrix(MATRIX_PATH.read_text(encoding="utf-8"))


def role_permissions(role: str) -> frozenset[str]:
    return MATRIX.by_role[role]


def scope_permissions(scopes: list[str]) -> frozenset[str]:
    """What an API key with these scopes may do: each `x:write` scope also grants `x:read`."""
    granted = set(scopes)
    for scope in scopes:
        family, _, action = scope.partition(":")
        if action == "write" and f"{family}:read" in MATRIX.key_scopes:
            granted.add(f"{family}:read")
    return frozenset(granted)
