"""Every change to tenants, members, invitations and API keys goes through these functions.

Each one checks the actor's permission, applies the change in one transaction, writes an audit
event and queues side effects (emails) to run after commit.
"""

import hashlib
import re
import secrets
from datetime import datetime, timedelta
from typing import Any, Protocol

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from tenants import keys
from tenants.access import Actor
from tenants.errors import Conflict, Forbidden, InvalidInput
from tenants.models import (
    ApiKey,
    AuditEvent,
    Invitation,
    Membership,
    Tenant,
    User,
)
from tenants.rls import tenant_lookup
from tenants.roles import MATRIX, Role, scope_permissions

Changes = dict[str, list[Any]]


class AuditTarget(Protocol):
    """A tenant-owned object the audit log can name: its tenant, public id and a readable label."""

    tenant: Tenant
    public_id: str

    @property
    def audit_label(self) -> str: ...


def _changed(before: dict[str, Any], after: dict[str, Any]) -> Changes:
    return {name: [before[name], value] for name, value in after.items() if before[name] != value}


def audit_event_record(
    *, actor: Actor, action: str, target: Tenant | AuditTarget, changes: Changes | None = None
) -> AuditEvent:
    """Append one audit event about `target`, in its tenant. Call it inside the transaction of the
    change it describes, so the change and its record commit or roll back together."""
    return AuditEvent.objects.create(
        tenant=target if isinstance(target, Tenant) else target.tenant,
        actor_type=actor.kind,
        actor_id=actor.public_id,
        actor_label=actor.label,
        action=action,
        target_type=re.sub(r"(?<!^)(?=[A-Z])", "_", type(target).__name__).lower(),
        target_id=target.public_id,
        target_label=target.audit_label,
        changes=changes or {},
        ip_address=actor.ip_address,
        request_id=actor.request_id,
    )


# --- Tenants ----------------------------------------------------------------------------------


def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "tenant"
    slug, n = base, 1
    while Tenant.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def tenant_create(*, actor: Actor, name: str, slug: str = "") -> Tenant:
    """Create a tenant. Operators only (management command, admin)."""
    if actor.kind != "system":
        raise Forbidden("Only operators can create tenants.")
    name = name.strip()
    if not name:
        raise InvalidInput.field("name", "A tenant needs a name.")
    if slug and slug != slugify(slug):
        raise InvalidInput.field("slug", "Use lowercase letters, digits and hyphens only.")
    try:
        with transaction.atomic():
            tenant = Tenant.objects.create(name=name, slug=slug or _unique_slug(name))
            audit_event_record(
                actor=actor,
                action="tenant.create",
                target=tenant,
                changes={"name": [None, tenant.name], "slug": [None, tenant.slug]},
            )
    except IntegrityError:
        raise InvalidInput.field("slug", f"The slug {slug!r} is taken.") from None
    return tenant


OPERATOR_TENANT_FIELDS = (
    "status",
    "max_concurrent_calls",
    "api_requests_per_minute",
    "max_agents",
    "max_phone_numbers",
    "max_document_bytes",
    "max_outbound_calls_per_minute",
    "max_number_purchases_per_day",
    "dispute_window_days",
)


# How long personal data from calls is kept (calls/lifecycle.py removes it after), in days.
RETENTION_FIELDS = {
    "recording_retention_days": "recordings",
    "transcript_retention_days": "transcripts",
    "webhook_body_retention_days": "webhook bodies",
}
RETENTION_DAYS_MIN, RETENTION_DAYS_MAX = 1, 3650


def _check_retention(fields: dict[str, Any]) -> None:
    errors = {}
    for name, what in RETENTION_FIELDS.items():
        if name not in fields:
            continue
        value = fields[name]
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not RETENTION_DAYS_MIN <= value <= RETENTION_DAYS_MAX
        ):
            errors[name] = [
                f"Keep {what} between {RETENTION_DAYS_MIN} and {RETENTION_DAYS_MAX} days "
                "(a whole number)."
            ]
    if errors:
        raise InvalidInput(next(iter(errors.values()))[0], errors=errors)


def tenant_update(*, tenant: Tenant, actor: Actor, **fields: Any) -> Tenant:
    """Change a tenant's name (tenant:write), its retention periods (also privacy:write) or its
    status and limits (operators only)."""
    allowed = {"name", *OPERATOR_TENANT_FIELDS, *RETENTION_FIELDS}
    unknown = set(fields) - allowed
    if unknown:
        raise InvalidInput(f"Unknown fields: {', '.join(sorted(unknown))}.")
    actor.require("tenant:write")
    if set(fields) & set(RETENTION_FIELDS):
        actor.require("privacy:write")
        _check_retention(fields)
    if actor.kind != "system" and set(fields) & set(OPERATOR_TENANT_FIELDS):
        raise Forbidden("A tenant's status and limits are set by the platform operator.")
    if "name" in fields:
        fields["name"] = str(fields["name"]).strip()
        if not fields["name"]:
            raise InvalidInput.field("name", "A tenant needs a name.")
    if "status" in fields and fields["status"] not in Tenant.Status.values:
        raise InvalidInput.field("status", f"Status is one of {', '.join(Tenant.Status.values)}.")
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
        changes = _changed({name: getattr(tenant, name) for name in fields}, fields)
        if not changes:
            return tenant
        for name, (_, value) in changes.items():
            setattr(tenant, name, value)
        tenant.save(update_fields=[*changes, "updated_at"])
        audit_event_record(
            actor=actor,
            action="tenant.update",
            target=tenant,
            changes=changes,
        )
    return tenant


# --- Members and invitations ------------------------------------------------------------------


def _require_role_change_rights(actor: Actor, *roles: str) -> None:
    actor.require("members:write")
    if Role.OWNER in roles:
        actor.require("members:manage_owners")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_create(
    *, tenant: Tenant, actor: Actor, email: str, role: str
) -> tuple[Invitation, str]:
    """Invite someone by email. Returns the invitation and the secret token in its link.

    The email goes out after commit. One pending invitation per address: an expired one is
    replaced, a live one must be revoked first.
    """
    email = email.strip()
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput.field("email", "Enter a valid email address.") from None
    if role not in Role.values:
        raise InvalidInput.field("role", f"Role is one of {', '.join(Role.values)}.")
    _require_role_change_rights(actor, role)
    if Membership.objects.for_tenant(tenant).filter(user__email__iexact=email).exists():
        raise InvalidInput.field("email", f"{email} is already a member.", code="already_member")

    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        pending = (
            Invitation.objects.for_tenant(tenant)
            .select_for_update()
            .filter(email__iexact=email)
            .first()
        )
        if pending and not pending.is_expired:
            raise InvalidInput.field(
                "email",
                f"An invitation to {email} is already pending; revoke it to send a new one.",
                code="invitation_pending",
            )
        if pending:
            pending.delete()
        invitation = Invitation.objects.create(
            tenant=tenant,
            email=email,
            role=role,
            token_hash=_token_hash(token),
            invited_by=actor.user,
            expires_at=timezone.now() + timedelta(days=settings.INVITATION_TTL_DAYS),
        )
        audit_event_record(
            actor=actor,
            action="invitation.create",
            target=invitation,
            changes={"email": [None, email], "role": [None, role]},
        )
        from tenants.tasks import send_invitation_email

        transaction.on_commit(lambda: send_invitation_email.delay(invitation.pk, token))
    return invitation, token


def invitation_revoke(*, invitation: Invitation, actor: Actor) -> None:
    _require_role_change_rights(actor, invitation.role)
    with transaction.atomic():
        audit_event_record(
            actor=actor,
            action="invitation.revoke",
            target=invitation,
        )
        invitation.delete()


def invitation_for_token(token: str) -> Invitation | None:
    """The invitation a link's token belongs to, in any tenant: the token is the credential."""
    with tenant_lookup("invitation link"):
        return (
            Invitation.all_tenants.select_related("tenant", "invited_by")
            .filter(token_hash=_token_hash(token))
            .first()
        )


def membership_add(*, tenant: Tenant, user: User, role: str, actor: Actor) -> Membership:
    """Make `user` a member with `role`; an existing membership is returned unchanged."""
    if role not in Role.values:
        raise InvalidInput.field("role", f"Role is one of {', '.join(Role.values)}.")
    with transaction.atomic():
        membership, created = Membership.all_tenants.get_or_create(
            tenant=tenant, user=user, defaults={"role": role}
        )
        if created:
            audit_event_record(
                actor=actor,
                action="membership.create",
                target=membership,
                changes={"role": [None, role]},
            )
    return membership


def invitation_accept(*, invitation: Invitation, user: User, actor: Actor) -> Membership:
    """Turn an invitation into a membership for the signed-in user it was addressed to."""
    if invitation.is_expired:
        raise InvalidInput("This invitation has expired; ask for a new one.", code="expired")
    if user.email.lower() != invitation.email.lower():
        raise Forbidden(
            f"This invitation is for {invitation.email}; you are signed in as {user.email}."
        )
    with transaction.atomic():
        membership = membership_add(
            tenant=invitation.tenant, user=user, role=invitation.role, actor=actor
        )
        audit_event_record(
            actor=actor,
            action="invitation.accept",
            target=invitation,
        )
        invitation.delete()
    return membership


def _lock_owners(tenant: Tenant) -> list[Membership]:
    # Locking every owner row serialises concurrent demotions, so two of them cannot each see
    # "another owner remains" and leave the tenant with none.
    return list(Membership.objects.for_tenant(tenant).filter(role=Role.OWNER).select_for_update())


def membership_change_role(*, membership: Membership, actor: Actor, role: str) -> Membership:
    if role not in Role.values:
        raise InvalidInput.field("role", f"Role is one of {', '.join(Role.values)}.")
    _require_role_change_rights(actor, role, membership.role)
    with transaction.atomic():
        owners = _lock_owners(membership.tenant)
        membership = Membership.objects.for_tenant(membership.tenant).get(pk=membership.pk)
        if membership.role == role:
            return membership
        if membership.role == Role.OWNER and len(owners) == 1:
            raise Conflict("A tenant keeps at least one owner.", code="last_owner")
        changes = {"role": [membership.role, role]}
        membership.role = role
        membership.save(update_fields=["role"])
        audit_event_record(
            actor=actor,
            action="membership.update",
            target=membership,
            changes=changes,
        )
    return membership


def membership_remove(*, membership: Membership, actor: Actor) -> None:
    _require_role_change_rights(actor, membership.role)
    with transaction.atomic():
        owners = _lock_owners(membership.tenant)
        if membership.role == Role.OWNER and len(owners) == 1:
            raise Conflict("The last owner cannot be removed.", code="last_owner")
        audit_event_record(
            actor=actor,
            action="membership.delete",
            target=membership,
            changes={"role": [membership.role, None]},
        )
        membership.delete()


# --- API keys ---------------------------------------------------------------------------------


def _validate_scopes(actor: Actor, scopes: list[str]) -> list[str]:
    if not scopes:
        raise InvalidInput.field("scopes", "Give the key at least one scope.")
    unknown = sorted(set(scopes) - MATRIX.key_scopes)
    if unknown:
        raise InvalidInput.field(
            "scopes",
            f"Unknown scopes: {', '.join(unknown)}. Known: {', '.join(sorted(MATRIX.key_scopes))}.",
        )
    if actor.kind != "system":
        beyond = sorted(scope_permissions(scopes) - actor.permissions)
        if beyond:
            who = "A key" if actor.kind == "api_key" else "You"
            holds = "it lacks" if actor.kind == "api_key" else "you lack"
            raise Forbidden(f"{who} cannot create a key with scopes {holds}: {', '.join(beyond)}.")
    return sorted(set(scopes))


def api_key_grantable_scopes(actor: Actor) -> list[str]:
    """The scopes `actor` may give a new key: never more than it holds itself, so neither a key
    nor a member can mint a credential stronger than their own."""
    return sorted(
        scope
        for scope in MATRIX.key_scopes
        if actor.kind == "system" or scope_permissions([scope]) <= actor.permissions
    )


def api_key_status(api_key: ApiKey) -> str:
    """How lists show a key: active, revoked or expired."""
    if api_key.revoked_at is not None:
        return "revoked"
    return "active" if api_key.is_usable() else "expired"


def api_key_create(
    *,
    tenant: Tenant,
    actor: Actor,
    name: str,
    scopes: list[str],
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create a key. Returns the row and the secret, which is never available again."""
    actor.require("api_keys:write")
    name = name.strip()
    if not name:
        raise InvalidInput.field("name", "Give the key a name.")
    scopes = _validate_scopes(actor, scopes)
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput.field("expires_at", "The expiry must be in the future.")
    secret = keys.generate_key()
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            tenant=tenant,
            name=name,
            prefix=keys.display_prefix(secret),
            secret_hash=keys.hash_key(secret),
            scopes=scopes,
            created_by=actor.user,
            expires_at=expires_at,
        )
        audit_event_record(
            actor=actor,
            action="api_key.create",
            target=api_key,
            changes={
                "name": [None, name],
                "scopes": [None, scopes],
                "expires_at": [None, expires_at.isoformat() if expires_at else None],
            },
        )
    return api_key, secret


def api_key_revoke(*, api_key: ApiKey, actor: Actor) -> ApiKey:
    """Revoke a key; the next request that presents it is refused. Revoking twice is a no-op."""
    actor.require("api_keys:write")
    with transaction.atomic():
        api_key = ApiKey.objects.for_tenant(api_key.tenant).select_for_update().get(pk=api_key.pk)
        if api_key.revoked_at is not None:
            return api_key
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        audit_event_record(
            actor=actor,
            action="api_key.revoke",
            target=api_key,
            changes={"revoked_at": [None, api_key.revoked_at.isoformat()]},
        )
    return api_key


LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_key_mark_used(api_key: ApiKey) -> None:
    """Record use at most once a minute, so a busy key does not write on every request."""
    now = timezone.now()
    if api_key.last_used_at and now - api_key.last_used_at < LAST_USED_RESOLUTION:
        return
    ApiKey.objects.for_tenant(api_key.tenant).filter(pk=api_key.pk).exclude(
        last_used_at__gte=now - LAST_USED_RESOLUTION
    ).update(last_used_at=now)
    api_key.last_used_at = now


def invitation_email_send(*, invitation: Invitation, token: str) -> None:
    """Email the invitation link. The token is not stored, so this is the only copy."""
    url = settings.PUBLIC_BASE_URL + reverse("accounts:invitation", args=[token])
    inviter = invitation.invited_by.get_full_name() if invitation.invited_by else "An operator"
    context = {"invitation": invitation, "url": url, "inviter": inviter}
    send_mail(
        subject=f"Join {invitation.tenant.name} on Switchboard",
        message=render_to_string("emails/invitation.txt", context),
        from_email=None,
        recipient_list=[invitation.email],
    )


# --- Users ------------------------------------------------------------------------------------


def user_register(*, email: str, name: str, password: str) -> User:
    """Create an account for someone accepting an invitation. Two-factor enrolment follows."""
    email = email.strip()
    if User.objects.filter(email__iexact=email).exists():
        raise InvalidInput.field("email", "An account with this email already exists; sign in.")
    user = User(email=User.objects.normalize_email(email), name=name.strip())
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise InvalidInput(
            "Choose a stronger password.", errors={"password": exc.messages}
        ) from None
    user.set_password(password)
    try:
        user.save()
    except IntegrityError:
        raise InvalidInput.field(
            "email", "An account with this email already exists; sign in."
        ) from None
    return user
