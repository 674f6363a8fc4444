"""Who is acting, in which tenant, with which permissions.

An `Actor` is built once per request (from a session's membership or an API key) or by a
management command, and passed to every service, which checks permissions and records it in
the audit log.
"""

from dataclasses import dataclass, field
from typing import Literal

from tenants.errors import Forbidden
from tenants.models import ApiKey, Membership, Tenant, User
from tenants.rls import tenant_lookup
from tenants.roles import role_permissions, scope_permissions

ActorKind = Literal["user", "api_key", "system"]


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    public_id: str
    label: str
    permissions: frozenset[str] = field(default_factory=frozenset)
    user: User | None = None
    api_key: ApiKey | None = None
    membership: Membership | None = None
    ip_address: str | None = None
    request_id: str = ""

    @classmethod
    def for_membership(
        cls, membership: Membership, *, ip_address: str | None = None, request_id: str = ""
    ) -> "Actor":
        return cls(
            kind="user",
            public_id=membership.user.public_id,
            label=membership.user.email,
            permissions=role_permissions(membership.role),
            user=membership.user,
            membership=membership,
            ip_address=ip_address,
            request_id=request_id,
        )

    @classmethod
    def for_api_key(
        cls, api_key: ApiKey, *, ip_address: str | None = None, request_id: str = ""
    ) -> "Actor":
        return cls(
            kind="api_key",
            public_id=api_key.public_id,
            label=f"{api_key.name} ({api_key.prefix}…)",
            permissions=scope_permissions(api_key.scopes),
            api_key=api_key,
            ip_address=ip_address,
            request_id=request_id,
        )

    @classmethod
    def system(cls, label: str) -> "Actor":
        """Operator tooling (management commands, the admin, scheduled jobs): may do anything."""
        return cls(kind="system", public_id="", label=label)

    def can(self, permission: str) -> bool:
        return self.kind == "system" or permission in self.permissions

    def require(self, permission: str) -> None:
        if not self.can(permission):
            raise Forbidden(f"This action needs the {permission} permission.")


@dataclass(frozen=True)
class TenantContext:
    """The tenant a request acts in, and who is acting."""

    tenant: Tenant
    actor: Actor


def memberships_of(user: User) -> list[Membership]:
    """A user's memberships across tenants (the tenant switcher), oldest first."""
    with tenant_lookup("a user's memberships"):
        return list(
            Membership.all_tenants.filter(user=user)
            .select_related("tenant", "user")
            .order_by("created_at")
        )


def active_membership(user: User, tenant_public_id: str | None) -> Membership | None:
    """The membership for the tenant a session chose, falling back to the user's first one."""
    memberships = memberships_of(user)
    for membership in memberships:
        if membership.tenant.public_id == tenant_public_id:
            return membership
    return memberships[0] if memberships else None


# The session key holding the public id of the tenant a signed-in user is working in.
ACTIVE_TENANT_SESSION_KEY = "active_tenant"
