"""How a console page knows who is acting, in which tenant, and what they may do.

Every console view is wrapped by `console_view`: it requires a signed-in user verified with
TOTP and an active membership, builds the same `TenantContext` the API builds, and answers 403
when the member's role lacks the page's permission. Objects are looked up through
`owned()`, scoped to the tenant, so another tenant's object is a 404 like a missing one. The
views call the same services as the API; no business rule is written here.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import Any, Concatenate, ParamSpec, TypeVar

from django import forms
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Page, Paginator
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from config.logging import tenant_id_var
from tenants import twofactor
from tenants.access import ACTIVE_TENANT_SESSION_KEY, Actor, TenantContext, active_membership
from tenants.errors import Forbidden, InvalidInput, NotFound, ServiceError
from tenants.models import Membership, Tenant, TenantOwnedModel, User
from tenants.rls import tenant_context
from tenants.roles import role_permissions

P = ParamSpec("P")
M = TypeVar("M", bound=Model)
PAGE_SIZE = 25

ConsoleView = Callable[Concatenate[HttpRequest, TenantContext, P], HttpResponse]


@dataclass(frozen=True)
class Can:
    """`{% if can.agents.write %}` in templates: the acting member's permissions."""

    permissions: frozenset[str]

    def __getitem__(self, family: str) -> dict[str, bool]:
        prefix = f"{family}:"
        return {p.removeprefix(prefix): True for p in self.permissions if p.startswith(prefix)}


def forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "console/forbidden.html", {"message": message}, status=403)


def console_view(
    permission: str | None = None,
) -> Callable[[ConsoleView[P]], Callable[Concatenate[HttpRequest, P], HttpResponse]]:
    """Wrap a console page; `permission` is the one the page needs (docs/roles.md)."""

    def decorator(view: ConsoleView[P]) -> Callable[Concatenate[HttpRequest, P], HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
            user = request.user
            if not (user.is_authenticated and twofactor.is_verified(user)):
                return redirect_to_login(request.get_full_path(), "accounts:login")
            assert isinstance(user, User)
            membership = active_membership(user, request.session.get(ACTIVE_TENANT_SESSION_KEY))
            if membership is None:
                # Home is where a new user lands: not an error there, a refusal elsewhere.
                status = 200 if request.path == reverse("home") else 403
                return render(request, "console/no_membership.html", status=status)
            if membership.tenant.status != Tenant.Status.ACTIVE:
                return forbidden(
                    request, "This tenant is suspended; contact the platform operator."
                )
            ctx = context_for(request, membership)
            request.console = ctx  # type: ignore[attr-defined]
            tenant_id_var.set(ctx.tenant.public_id)
            if permission is not None and not ctx.actor.can(permission):
                return forbidden(request, f"This page needs the {permission} permission.")
            try:
                # One transaction per page that sees only the tenant's rows.
                with tenant_context(ctx.tenant):
                    return view(request, ctx, *args, **kwargs)
            except NotFound as exc:
                raise Http404(exc.detail) from exc
            except Forbidden as exc:
                return forbidden(request, exc.detail)

        wrapped.console_permission = permission  # type: ignore[attr-defined]
        return wrapped

    return decorator


def context_for(request: HttpRequest, membership: Membership) -> TenantContext:
    actor = Actor.for_membership(
        membership,
        ip_address=request.META.get("REMOTE_ADDR") or None,
        request_id=getattr(request, "request_id", ""),
    )
    return TenantContext(tenant=membership.tenant, actor=actor)


def can(ctx: TenantContext) -> Can:
    membership = ctx.actor.membership
    return Can(role_permissions(membership.role) if membership else frozenset())


def owned(
    model: type[M], ctx: TenantContext, public_id: str, queryset: QuerySet[M] | None = None
) -> M:
    """The tenant's object with this public id, or 404 (also for another tenant's object)."""
    assert issubclass(model, TenantOwnedModel)
    scoped = queryset if queryset is not None else model.objects.for_tenant(ctx.tenant)
    found = scoped.filter(tenant=ctx.tenant, public_id=public_id).first()
    if found is None:
        raise Http404(f"No {model._meta.verbose_name} {public_id}.")
    return found


def paginate(
    request: HttpRequest, items: QuerySet[Any] | list[Any], per_page: int = PAGE_SIZE
) -> Page[Any]:
    """One page of `items`, from `?page=`; a page past the end shows the last one."""
    return Paginator(items, per_page).get_page(request.GET.get("page"))


def service_errors_to_form(form: forms.Form, error: ServiceError) -> None:
    """Put a service's complaint next to the field it is about, else above the form."""
    placed = False
    if isinstance(error, InvalidInput):
        for field, messages in error.errors.items():
            name = field.split(".")[0].split("[")[0]
            target = name if name in form.fields else None
            for message in messages:
                form.add_error(target, message if target else f"{field}: {message}")
            placed = True
    if not placed:
        form.add_error(None, error.detail)


def confirmation(
    request: HttpRequest,
    *,
    title: str,
    message: str,
    danger: bool = True,
    details: Iterable[tuple[str, str]] = (),
) -> HttpResponse | None:
    """A destructive or paid action asks first: until the POST carries `confirmed`, answer with
    a page that repeats the submitted fields and asks the user to confirm (no script needed);
    confirming posts them again to the same address.
    Returns None once the user has confirmed."""
    if request.method == "POST" and request.POST.get("confirmed") == "yes":
        return None
    fields = [
        (key, value)
        for key, values in (request.POST.lists() if request.method == "POST" else [])
        for value in values
        if key not in ("csrfmiddlewaretoken", "confirmed")
    ]
    context = {
        "title": title,
        "message": message,
        "action": request.path,
        "danger": danger,
        "fields": fields,
        "details": list(details),
        "back": request.META.get("HTTP_REFERER") or "",
    }
    return render(request, "console/confirm.html", context)
