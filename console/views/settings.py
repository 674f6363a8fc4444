"""Settings: account security (authenticator, recovery codes), the tenant, API keys, webhook
endpoints, privacy (retention periods and erasures) and the audit log.

Secrets (API keys, webhook signing secrets, recovery codes) are shown exactly once: the action
puts them in the session and the page after the redirect takes them out, so a reload, the back
button or another visit never shows them again.
"""

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice

from calls import lifecycle
from calls.models import Erasure
from console.context import (
    confirmation,
    console_view,
    owned,
    paginate,
    service_errors_to_form,
)
from console.forms.settings import (
    ApiKeyForm,
    AuditFilterForm,
    ErasureForm,
    RetentionForm,
    TenantForm,
    WebhookEndpointForm,
)
from tenants import services, twofactor, webhooks
from tenants.access import TenantContext
from tenants.api.filters import AuditEventFilter
from tenants.errors import ServiceError
from tenants.forms import TokenForm
from tenants.models import ApiKey, AuditEvent, User, WebhookDelivery, WebhookEndpoint

SHOWN_ONCE_API_KEY = "console_new_api_key"
SHOWN_ONCE_WEBHOOK = "console_new_webhook_signing_key"
SHOWN_ONCE_RECOVERY_CODES = "console_recovery_codes"


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _render(
    request: HttpRequest,
    template: str,
    section: str,
    context: dict[str, Any],
    status: int = 200,
) -> HttpResponse:
    """Render a Settings page; `section` marks the current tab of the sub-navigation."""
    return render(
        request, f"console/settings/{template}", {"section": section, **context}, status=status
    )


@console_view(None)
def index(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    user = _user(request)
    context = {
        "authenticators": twofactor.authenticators(user),
        "recovery_codes_left": twofactor.recovery_codes_remaining(user),
        "has_recovery_codes": twofactor.recovery_device(user) is not None,
    }
    return _render(request, "index.html", "", context)


# --- Account security -------------------------------------------------------------------------


@console_view(None)
def security(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    user = _user(request)
    context = {
        "authenticators": twofactor.authenticators(user),
        "recovery_codes_left": twofactor.recovery_codes_remaining(user),
        "has_recovery_codes": twofactor.recovery_device(user) is not None,
        "recovery_code_count": twofactor.RECOVERY_CODE_COUNT,
    }
    return _render(request, "security.html", "security", context)


@console_view(None)
def authenticator(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    """Set up a new authenticator app; the old one keeps working until the new one is confirmed."""
    user = _user(request)
    device = twofactor.pending_device(user)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if twofactor.device_replace_confirm(device, form.cleaned_data["token"], actor=ctx.actor):
            # The session was verified with a device that no longer exists: move it to the new one.
            otp_login(request, device)
            messages.success(
                request, "Your new authenticator app is set up; the old one no longer works."
            )
            return redirect("console:settings-security")
        form.add_error("token", "That code does not match. Check the app and try the new code.")
    context = {
        "form": form,
        "qr_svg": twofactor.qr_svg(device.config_url),
        "manual_key": twofactor.manual_key(device),
    }
    status = 400 if request.method == "POST" else 200
    return _render(request, "authenticator.html", "security", context, status=status)


@console_view(None)
def recovery_codes(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    """GET: the codes just generated (once), or how many remain. POST: a new set."""
    user = _user(request)
    if request.method == "POST":
        left = twofactor.recovery_codes_remaining(user)
        if left:
            asked = confirmation(
                request,
                title="Generate new recovery codes",
                message=f"Your {left} unused recovery code(s) stop working; save the new ones.",
            )
            if asked is not None:
                return asked
        previous = getattr(user, "otp_device", None)
        device, codes = twofactor.recovery_codes_generate(user, actor=ctx.actor)
        if isinstance(previous, StaticDevice):
            # Signed in with a code from the set just replaced: keep the session verified.
            otp_login(request, device)
        request.session[SHOWN_ONCE_RECOVERY_CODES] = codes
        return redirect("console:settings-recovery-codes")
    context = {
        "codes": request.session.pop(SHOWN_ONCE_RECOVERY_CODES, None),
        "recovery_codes_left": twofactor.recovery_codes_remaining(user),
        "has_recovery_codes": twofactor.recovery_device(user) is not None,
        "recovery_code_count": twofactor.RECOVERY_CODE_COUNT,
    }
    return _render(request, "recovery_codes.html", "security", context)


# --- Tenant -----------------------------------------------------------------------------------


@console_view("tenant:read")
def tenant(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    return _tenant_page(request, ctx, TenantForm(initial={"name": ctx.tenant.name}))


def _tenant_page(
    request: HttpRequest, ctx: TenantContext, form: TenantForm, status: int = 200
) -> HttpResponse:
    return _render(
        request, "tenant.html", "tenant", {"form": form, "tenant": ctx.tenant}, status=status
    )


@console_view("tenant:write")
def tenant_rename(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    if request.method != "POST":
        return redirect("console:settings-tenant")
    form = TenantForm(request.POST)
    if form.is_valid():
        try:
            services.tenant_update(
                tenant=ctx.tenant, actor=ctx.actor, name=form.cleaned_data["name"]
            )
        except ServiceError as exc:
            service_errors_to_form(form, exc)
        else:
            messages.success(
                request, f"The tenant is now called {form.cleaned_data['name'].strip()}."
            )
            return redirect("console:settings-tenant")
    return _tenant_page(request, ctx, form, status=400)


# --- API keys ---------------------------------------------------------------------------------


@console_view("api_keys:read")
def api_keys(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    keys = (
        ApiKey.objects.for_tenant(ctx.tenant)
        .select_related("created_by")
        .order_by("-created_at", "-id")
    )
    page = paginate(request, keys)
    rows = [(key, services.api_key_status(key)) for key in page]
    context = {"page": page, "rows": rows, "created": request.session.pop(SHOWN_ONCE_API_KEY, None)}
    return _render(request, "api_keys.html", "api-keys", context)


@console_view("api_keys:write")
def api_key_new(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    grantable = services.api_key_grantable_scopes(ctx.actor)
    form = ApiKeyForm(request.POST or None, grantable=grantable)
    if request.method == "POST":
        if form.is_valid():
            try:
                api_key, secret = services.api_key_create(
                    tenant=ctx.tenant,
                    actor=ctx.actor,
                    name=form.cleaned_data["name"],
                    scopes=form.cleaned_data["scopes"],
                    expires_at=form.expiry(),
                )
            except ServiceError as exc:
                service_errors_to_form(form, exc)
            else:
                request.session[SHOWN_ONCE_API_KEY] = {
                    "name": api_key.name,
                    "prefix": api_key.prefix,
                    "secret": secret,
                }
                messages.success(request, f"The key {api_key.name} was created.")
                return redirect("console:api-keys")
        return _render(request, "api_key_form.html", "api-keys", {"form": form}, status=400)
    return _render(request, "api_key_form.html", "api-keys", {"form": form})


@console_view("api_keys:write")
def api_key_revoke(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    api_key = owned(ApiKey, ctx, id)
    if request.method != "POST":
        return redirect("console:api-keys")
    asked = confirmation(
        request,
        title="Revoke API key",
        message=(
            f"Requests that present {api_key.name} ({api_key.prefix}…) are refused from now on. "
            "This cannot be undone."
        ),
        details=[
            ("Name", api_key.name),
            ("Prefix", f"{api_key.prefix}…"),
            ("Scopes", ", ".join(api_key.scopes)),
        ],
    )
    if asked is not None:
        return asked
    services.api_key_revoke(api_key=api_key, actor=ctx.actor)
    messages.success(request, f"The key {api_key.name} was revoked.")
    return redirect("console:api-keys")


# --- Webhook endpoints ------------------------------------------------------------------------


@console_view("webhooks:read")
def webhook_list(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    endpoints = WebhookEndpoint.objects.for_tenant(ctx.tenant).order_by("-created_at", "-id")
    return _render(request, "webhooks.html", "webhooks", {"page": paginate(request, endpoints)})


@console_view("webhooks:write")
def webhook_new(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    form = WebhookEndpointForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                endpoint, secret = webhooks.endpoint_create(
                    tenant=ctx.tenant, actor=ctx.actor, **form.cleaned_data
                )
            except ServiceError as exc:
                service_errors_to_form(form, exc)
            else:
                shown = {"endpoint": endpoint.public_id, "secret": secret}
                request.session[SHOWN_ONCE_WEBHOOK] = shown
                messages.success(request, f"Events will be sent to {endpoint.url}.")
                return redirect("console:webhook", id=endpoint.public_id)
        return _render(request, "webhook_form.html", "webhooks", {"form": form}, status=400)
    return _render(request, "webhook_form.html", "webhooks", {"form": form})


@console_view("webhooks:read")
def webhook_detail(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    endpoint = owned(WebhookEndpoint, ctx, id)
    deliveries = (
        WebhookDelivery.objects.for_tenant(ctx.tenant)
        .filter(endpoint=endpoint)
        .select_related("replay_of")
        .order_by("-created_at", "-id")
    )
    shown = request.session.pop(SHOWN_ONCE_WEBHOOK, None)
    context = {
        "endpoint": endpoint,
        "page": paginate(request, deliveries),
        "secret": shown["secret"] if shown and shown["endpoint"] == endpoint.public_id else None,
        "rotating_until": endpoint.secrets.get("previous_until"),
    }
    return _render(request, "webhook.html", "webhooks", context)


@console_view("webhooks:write")
def webhook_edit(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    endpoint = owned(WebhookEndpoint, ctx, id)
    initial = {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": endpoint.event_types,
    }
    form = WebhookEndpointForm(request.POST or None, initial=initial)
    if request.method == "POST":
        if form.is_valid():
            try:
                webhooks.endpoint_update(endpoint=endpoint, actor=ctx.actor, **form.cleaned_data)
            except ServiceError as exc:
                service_errors_to_form(form, exc)
            else:
                messages.success(request, "The endpoint was saved.")
                return redirect("console:webhook", id=endpoint.public_id)
        endpoint.refresh_from_db()
        return _render(
            request,
            "webhook_form.html",
            "webhooks",
            {"form": form, "endpoint": endpoint},
            status=400,
        )
    return _render(request, "webhook_form.html", "webhooks", {"form": form, "endpoint": endpoint})


@console_view("webhooks:write")
def webhook_enable(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    endpoint = owned(WebhookEndpoint, ctx, id)
    if request.method == "POST":
        webhooks.endpoint_enable(endpoint=endpoint, actor=ctx.actor)
        messages.success(
            request, "The endpoint is enabled. Replay the deliveries it missed from its log."
        )
    return redirect("console:webhook", id=endpoint.public_id)


@console_view("webhooks:write")
def webhook_disable(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    endpoint = owned(WebhookEndpoint, ctx, id)
    if request.method != "POST":
        return redirect("console:webhook", id=endpoint.public_id)
    asked = confirmation(
        request,
        title="Disable endpoint",
        message=(
            f"No events are sent to {endpoint.url} until you enable it again; deliveries waiting "
            "to be sent fail, and you can replay them."
        ),
    )
    if asked is not None:
        return asked
    webhooks.endpoint_disable(endpoint=endpoint, actor=ctx.actor)
    messages.success(request, "The endpoint is disabled.")
    return redirect("console:webhook", id=endpoint.public_id)


@console_view("webhooks:write")
def webhook_rotate(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    endpoint = owned(WebhookEndpoint, ctx, id)
    if request.method != "POST":
        return redirect("console:webhook", id=endpoint.public_id)
    asked = confirmation(
        request,
        title="Rotate signing secret",
        message=(
            "A new secret signs every message from now on; for 24 hours the old one signs them "
            "too, so your receiver can switch without missing events."
        ),
        danger=False,
    )
    if asked is not None:
        return asked
    secret = webhooks.endpoint_rotate_secret(endpoint=endpoint, actor=ctx.actor)
    request.session[SHOWN_ONCE_WEBHOOK] = {"endpoint": endpoint.public_id, "secret": secret}
    messages.success(request, "The signing secret was rotated.")
    return redirect("console:webhook", id=endpoint.public_id)


@console_view("webhooks:write")
def webhook_delete(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    endpoint = owned(WebhookEndpoint, ctx, id)
    if request.method != "POST":
        return redirect("console:webhook", id=endpoint.public_id)
    asked = confirmation(
        request,
        title="Delete endpoint",
        message=f"{endpoint.url} will receive no more events; its delivery log goes with it.",
        details=[("URL", endpoint.url)],
    )
    if asked is not None:
        return asked
    webhooks.endpoint_delete(endpoint=endpoint, actor=ctx.actor)
    messages.success(request, f"The endpoint {endpoint.url} was deleted.")
    return redirect("console:webhooks")


@console_view("webhooks:write")
def webhook_delivery_replay(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    delivery = owned(
        WebhookDelivery,
        ctx,
        id,
        WebhookDelivery.objects.for_tenant(ctx.tenant).select_related("endpoint"),
    )
    if request.method == "POST":
        try:
            copy = webhooks.replay(delivery=delivery, actor=ctx.actor)
        except ServiceError as exc:
            messages.error(request, f"The delivery was not replayed: {exc.detail}")
        else:
            messages.success(request, f"The event is being sent again as {copy.public_id}.")
    return redirect("console:webhook", id=delivery.endpoint.public_id)


# --- Privacy: retention periods and erasures ---------------------------------------------------


def _retention_initial(ctx: TenantContext) -> dict[str, int]:
    return {name: getattr(ctx.tenant, name) for name in services.RETENTION_FIELDS}


def _privacy_page(
    request: HttpRequest,
    ctx: TenantContext,
    *,
    retention: RetentionForm | None = None,
    erasure: ErasureForm | None = None,
    status: int = 200,
) -> HttpResponse:
    erasures = Erasure.objects.for_tenant(ctx.tenant).order_by("-created_at", "-id")
    context = {
        "tenant": ctx.tenant,
        "retention_form": retention or RetentionForm(initial=_retention_initial(ctx)),
        "erasure_form": erasure or ErasureForm(),
        "page": paginate(request, erasures),
    }
    return _render(request, "privacy.html", "privacy", context, status=status)


@console_view("privacy:read")
def privacy(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    return _privacy_page(request, ctx)


@console_view("privacy:write")
def privacy_retention(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    if request.method != "POST":
        return redirect("console:settings-privacy")
    form = RetentionForm(request.POST)
    if form.is_valid():
        try:
            services.tenant_update(tenant=ctx.tenant, actor=ctx.actor, **form.cleaned_data)
        except ServiceError as exc:
            service_errors_to_form(form, exc)
        else:
            messages.success(request, "The retention periods were saved.")
            return redirect("console:settings-privacy")
    return _privacy_page(request, ctx, retention=form, status=400)


@console_view("privacy:write")
def privacy_erase(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    if request.method != "POST":
        return redirect("console:settings-privacy")
    form = ErasureForm(request.POST)
    if form.is_valid():
        try:
            number = lifecycle.clean_number(form.cleaned_data["phone_number"])
        except ServiceError as exc:
            service_errors_to_form(form, exc)
        else:
            asked = confirmation(
                request,
                title="Erase personal data",
                message=(
                    f"Everything said, typed or recorded on the calls of {number} is removed "
                    "for good: transcripts, tool data, summaries, recordings and the bodies of "
                    "webhooks about them, and the number itself on each call. Outcomes, "
                    "durations and the bill stay. This cannot be undone."
                ),
                details=[("Number", number)],
            )
            if asked is not None:
                return asked
            try:
                erasure = lifecycle.erasure_create(
                    tenant=ctx.tenant, actor=ctx.actor, phone_number=number
                )
            except ServiceError as exc:
                service_errors_to_form(form, exc)
            else:
                calls = erasure.counts.get("calls", 0)
                messages.success(
                    request,
                    f"Erased the personal data of {calls} call(s) ({erasure.public_id}).",
                )
                return redirect("console:settings-privacy")
    return _privacy_page(request, ctx, erasure=form, status=400)


# --- Audit log --------------------------------------------------------------------------------


def _compact(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "—"
    text = str(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _changes(event: AuditEvent) -> list[str]:
    return [
        f"{field}: {_compact(pair[0])} → {_compact(pair[1])}"
        for field, pair in (event.changes or {}).items()
    ]


@console_view("audit:read")
def audit(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    events = AuditEvent.objects.for_tenant(ctx.tenant)
    actions = sorted(set(events.values_list("action", flat=True)))
    actors = dict(
        events.exclude(actor_id="").order_by("created_at").values_list("actor_id", "actor_label")
    )
    form = AuditFilterForm(
        request.GET or None, actions=actions, actors=sorted(actors.items(), key=lambda a: a[1])
    )
    chosen = form.cleaned_data if form.is_valid() else {}
    # The API's filter, so both narrow the log the same way.
    filtered = AuditEventFilter(
        {"action": chosen.get("action", ""), "actor": chosen.get("actor", "")}, queryset=events
    ).qs.order_by("-created_at", "-id")
    page = paginate(request, filtered)
    context = {
        "form": form,
        "page": page,
        "rows": [(event, _changes(event)) for event in page],
        "filtered": bool(chosen.get("action") or chosen.get("actor")),
    }
    return _render(request, "audit.html", "audit", context)


urlpatterns = [
    path("", index, name="settings"),
    path("security/", security, name="settings-security"),
    path("security/authenticator/", authenticator, name="settings-authenticator"),
    path("security/recovery-codes/", recovery_codes, name="settings-recovery-codes"),
    path("tenant/", tenant, name="settings-tenant"),
    path("tenant/rename/", tenant_rename, name="settings-tenant-rename"),
    path("api-keys/", api_keys, name="api-keys"),
    path("api-keys/new/", api_key_new, name="api-key-new"),
    path("api-keys/<str:id>/revoke/", api_key_revoke, name="api-key-revoke"),
    path("webhooks/", webhook_list, name="webhooks"),
    path("webhooks/new/", webhook_new, name="webhook-new"),
    path("webhooks/<str:id>/", webhook_detail, name="webhook"),
    path("webhooks/<str:id>/edit/", webhook_edit, name="webhook-edit"),
    path("webhooks/<str:id>/enable/", webhook_enable, name="webhook-enable"),
    path("webhooks/<str:id>/disable/", webhook_disable, name="webhook-disable"),
    path("webhooks/<str:id>/rotate-secret/", webhook_rotate, name="webhook-rotate"),
    path("webhooks/<str:id>/delete/", webhook_delete, name="webhook-delete"),
    path(
        "webhook-deliveries/<str:id>/replay/",
        webhook_delivery_replay,
        name="webhook-delivery-replay",
    ),
    path("privacy/", privacy, name="settings-privacy"),
    path("privacy/retention/", privacy_retention, name="settings-privacy-retention"),
    path("privacy/erase/", privacy_erase, name="settings-privacy-erase"),
    path("audit/", audit, name="audit"),
]
