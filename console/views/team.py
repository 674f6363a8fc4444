"""Team: members and their roles, pending invitations, inviting people.

Who may grant, take or remove the owner role, and that a tenant keeps an owner, are rules of
tenants.services; these pages show the service's refusal next to the control that caused it.
"""

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path

from console.context import (
    confirmation,
    console_view,
    owned,
    paginate,
    service_errors_to_form,
)
from console.forms.team import InviteForm, RoleForm
from tenants import services
from tenants.access import TenantContext
from tenants.errors import ServiceError
from tenants.models import Invitation, Membership
from tenants.roles import Role


def _team_page(
    request: HttpRequest,
    ctx: TenantContext,
    invite_form: InviteForm | None = None,
    status: int = 200,
) -> HttpResponse:
    members = (
        Membership.objects.for_tenant(ctx.tenant).select_related("user").order_by("created_at")
    )
    invitations = (
        Invitation.objects.for_tenant(ctx.tenant)
        .select_related("invited_by")
        .order_by("-created_at")
    )
    context = {
        "page": paginate(request, members),
        "invitations": invitations,
        "roles": Role.choices,
        "invite_form": invite_form or InviteForm(),
        "invitation_ttl_days": settings.INVITATION_TTL_DAYS,
    }
    return render(request, "console/team/index.html", context, status=status)


@console_view("members:read")
def index(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    return _team_page(request, ctx)


@console_view("members:write")
def invite(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    if request.method != "POST":
        return redirect("console:team")
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            invitation, _token = services.invitation_create(
                tenant=ctx.tenant,
                actor=ctx.actor,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
            )
        except ServiceError as exc:
            service_errors_to_form(form, exc)
        else:
            messages.success(
                request,
                f"Invitation sent to {invitation.email}: its link joins them as {invitation.role}.",
            )
            return redirect("console:team")
    return _team_page(request, ctx, invite_form=form, status=400)


@console_view("members:write")
def member_role(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    membership = owned(
        Membership, ctx, id, Membership.objects.for_tenant(ctx.tenant).select_related("user")
    )
    if request.method != "POST":
        return redirect("console:team")
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Choose one of the roles for {membership.user.email}.")
        return redirect("console:team")
    try:
        services.membership_change_role(
            membership=membership, actor=ctx.actor, role=form.cleaned_data["role"]
        )
    except ServiceError as exc:
        messages.error(
            request, f"{membership.user.email} keeps the {membership.role} role: {exc.detail}"
        )
    else:
        messages.success(request, f"{membership.user.email} is now {form.cleaned_data['role']}.")
    return redirect("console:team")


@console_view("members:write")
def member_remove(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    membership = owned(
        Membership, ctx, id, Membership.objects.for_tenant(ctx.tenant).select_related("user")
    )
    if request.method != "POST":
        return redirect("console:team")
    email = membership.user.email
    asked = confirmation(
        request,
        title="Remove member",
        message=f"{email} loses access to {ctx.tenant.name} at once; you can invite them again.",
        details=[("Member", email), ("Role", membership.get_role_display())],
    )
    if asked is not None:
        return asked
    try:
        services.membership_remove(membership=membership, actor=ctx.actor)
    except ServiceError as exc:
        messages.error(request, f"{email} was not removed: {exc.detail}")
    else:
        messages.success(request, f"{email} was removed from the team.")
    return redirect("console:team")


@console_view("members:write")
def invitation_revoke(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    invitation = owned(Invitation, ctx, id)
    if request.method != "POST":
        return redirect("console:team")
    asked = confirmation(
        request,
        title="Revoke invitation",
        message=f"The link sent to {invitation.email} will stop working.",
        details=[("Email", invitation.email), ("Role", invitation.get_role_display())],
    )
    if asked is not None:
        return asked
    try:
        services.invitation_revoke(invitation=invitation, actor=ctx.actor)
    except ServiceError as exc:
        messages.error(request, f"The invitation to {invitation.email} stays: {exc.detail}")
    else:
        messages.success(request, f"The invitation to {invitation.email} was revoked.")
    return redirect("console:team")


urlpatterns = [
    path("", index, name="team"),
    path("invite/", invite, name="team-invite"),
    path("members/<str:id>/role/", member_role, name="team-member-role"),
    path("members/<str:id>/remove/", member_remove, name="team-member-remove"),
    path("invitations/<str:id>/revoke/", invitation_revoke, name="team-invitation-revoke"),
]
