"""Tools and integrations: what agents can call during a call, and the credentials they use.

Each page calls agents.services.tools as the API does; "Test this tool" runs
agents.tool_runtime.tool_run exactly as the API's test action, which records nothing.
"""

import json
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path

from agents.integrations import IntegrationKind, integration_kinds
from agents.models import Integration, Tool
from agents.services import tools as services
from agents.tool_runtime import ToolOutcome, tool_run
from console.context import confirmation, console_view, owned, paginate
from console.forms.tools import (
    FIELDS_BY_KIND,
    TOOL_ERROR_FIELDS,
    IntegrationForm,
    ToolForm,
    ToolTestForm,
    place_service_errors,
    tool_kinds,
)
from tenants.access import TenantContext
from tenants.errors import Conflict, InvalidInput


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def kind_labels() -> dict[str, str]:
    return {k.kind: k.label for k in tool_kinds()}


# --- Tools ------------------------------------------------------------------------------------


def tools_of(ctx: TenantContext) -> Any:
    return Tool.objects.for_tenant(ctx.tenant).select_related("integration")


@console_view("tools:read")
def tool_list(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    page = paginate(request, tools_of(ctx).order_by("name"))
    labels = kind_labels()
    rows = [{"tool": tool, "kind": labels.get(tool.kind, tool.kind)} for tool in page]
    return render(request, "console/tools/list.html", {"page": page, "rows": rows})


@console_view("tools:write")
def tool_new(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    kind = request.GET.get("kind", "")
    if kind not in FIELDS_BY_KIND:
        return render(request, "console/tools/choose_kind.html", {"kinds": tool_kinds()})
    form = ToolForm(request.POST or None, kind=kind, tenant=ctx.tenant)
    if request.method == "POST" and form.is_valid():
        try:
            tool = services.tool_create(
                tenant=ctx.tenant, actor=ctx.actor, kind=kind, **form.service_fields()
            )
        except InvalidInput as exc:
            place_service_errors(form, exc, TOOL_ERROR_FIELDS)
        else:
            messages.success(request, f"Tool {tool.name} created. Try it below.")
            return redirect("console:tool", id=tool.public_id)
    context = {"form": form, "kind": kind, "kind_label": kind_labels()[kind]}
    status = 400 if form.is_bound else 200
    return render(request, "console/tools/new.html", context, status=status)


def render_tool(
    request: HttpRequest,
    ctx: TenantContext,
    tool: Tool,
    *,
    form: ToolForm | None = None,
    test_form: ToolTestForm | None = None,
    outcome: ToolOutcome | None = None,
    status: int = 200,
) -> HttpResponse:
    if form is None and ctx.actor.can("tools:write"):
        form = ToolForm(initial=ToolForm.initial_for(tool), kind=tool.kind, tenant=ctx.tenant)
    context = {
        "tool": tool,
        "kind_label": kind_labels().get(tool.kind, tool.kind),
        "parameters": pretty(tool.parameters),
        "config": pretty(tool.config),
        "form": form,
        "test_form": test_form or ToolTestForm(tool=tool, tenant=ctx.tenant),
        "outcome": outcome,
        "outcome_result": pretty(outcome.result) if outcome else "",
        "outcome_action": pretty(outcome.action) if outcome and outcome.action else "",
    }
    return render(request, "console/tools/detail.html", context, status=status)


@console_view("tools:read")
def tool_detail(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    """The tool, its edit form (POST, tools:write) and "Test this tool"."""
    tool = owned(Tool, ctx, id, tools_of(ctx))
    if request.method != "POST":
        return render_tool(request, ctx, tool)
    ctx.actor.require("tools:write")
    form = ToolForm(request.POST, kind=tool.kind, tenant=ctx.tenant)
    if form.is_valid():
        try:
            services.tool_update(tool=tool, actor=ctx.actor, **form.service_fields())
        except InvalidInput as exc:
            place_service_errors(form, exc, TOOL_ERROR_FIELDS)
            tool.refresh_from_db()  # a refused rename may have been set on the instance
        else:
            messages.success(request, f"Tool {tool.name} saved.")
            return redirect("console:tool", id=tool.public_id)
    return render_tool(request, ctx, tool, form=form, status=400)


@console_view("tools:write")
def tool_test(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    """Run the tool with sample arguments, as the API's test action does; nothing is recorded."""
    tool = owned(Tool, ctx, id, tools_of(ctx))
    if request.method != "POST":
        return redirect("console:tool", id=tool.public_id)
    form = ToolTestForm(request.POST, tool=tool, tenant=ctx.tenant)
    outcome = None
    if form.is_valid():
        outcome = tool_run(
            tool, form.cleaned_data["arguments"], version=form.cleaned_data.get("version")
        )
    if is_htmx(request):
        # htmx swaps only successful answers, so the partial carries its field errors with a 200.
        context = {
            "tool": tool,
            "test_form": form,
            "outcome": outcome,
            "outcome_result": pretty(outcome.result) if outcome else "",
            "outcome_action": pretty(outcome.action) if outcome and outcome.action else "",
        }
        return render(request, "console/tools/_test.html", context)
    status = 200 if outcome else 400
    return render_tool(request, ctx, tool, test_form=form, outcome=outcome, status=status)


@console_view("tools:write")
def tool_delete(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    tool = owned(Tool, ctx, id, tools_of(ctx))
    if request.method != "POST":
        return redirect("console:tool", id=tool.public_id)
    asking = confirmation(
        request,
        title="Delete tool",
        message=f"Delete the tool {tool.name}? This cannot be undone.",
        details=[("Name", tool.name), ("Kind", kind_labels().get(tool.kind, tool.kind))],
    )
    if asking:
        return asking
    try:
        services.tool_delete(tool=tool, actor=ctx.actor)
    except Conflict as exc:
        messages.error(request, exc.detail)
        return redirect("console:tool", id=tool.public_id)
    messages.success(request, f"Tool {tool.name} deleted.")
    return redirect("console:tools")


# --- Integrations -----------------------------------------------------------------------------


def secrets_state(integration: Integration, spec: IntegrationKind | None) -> list[tuple[str, bool]]:
    """Each secret field's label and whether it holds a value; never the value."""
    if spec is None:
        return [(name, bool(value)) for name, value in sorted(integration.secrets.items())]
    return [(f.label, bool(integration.secrets.get(f.name))) for f in spec.secret_fields]


@console_view("integrations:read")
def integration_list(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    kinds = integration_kinds()
    page = paginate(request, Integration.objects.for_tenant(ctx.tenant).order_by("name"))
    rows = [
        {
            "integration": integration,
            "kind": kinds[integration.kind].label
            if integration.kind in kinds
            else integration.kind,
            "secrets": secrets_state(integration, kinds.get(integration.kind)),
        }
        for integration in page
    ]
    return render(request, "console/tools/integrations.html", {"page": page, "rows": rows})


@console_view("integrations:write")
def integration_new(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    kinds = integration_kinds()
    spec = kinds.get(request.GET.get("kind", ""))
    if spec is None:
        return render(request, "console/tools/integration_kind.html", {"kinds": kinds.values()})
    form = IntegrationForm(request.POST or None, spec=spec)
    if request.method == "POST" and form.is_valid():
        try:
            integration = services.integration_create(
                tenant=ctx.tenant,
                actor=ctx.actor,
                kind=spec.kind,
                name=form.cleaned_data["name"],
                config=form.config(keep_empty=False),
                secrets=form.secrets(),
            )
        except InvalidInput as exc:
            form.place_errors(exc)
        else:
            messages.success(request, f"Integration {integration.name} created.")
            return redirect("console:integration", id=integration.public_id)
    status = 400 if form.is_bound else 200
    return render(
        request, "console/tools/integration_new.html", {"form": form, "spec": spec}, status=status
    )


@console_view("integrations:read")
def integration_detail(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    """The integration and its edit form (POST, integrations:write). Secrets are write-only."""
    integration = owned(Integration, ctx, id)
    spec = integration_kinds().get(integration.kind)
    form = None
    status = 200
    if request.method == "POST":
        ctx.actor.require("integrations:write")
        if spec is None:
            messages.error(request, f"The kind {integration.kind} can no longer be changed.")
            return redirect("console:integration", id=integration.public_id)
        form = IntegrationForm(request.POST, spec=spec, integration=integration)
        if form.is_valid():
            try:
                services.integration_update(
                    integration=integration,
                    actor=ctx.actor,
                    name=form.cleaned_data["name"],
                    config=form.config(keep_empty=True),
                    secrets=form.secrets(),
                )
            except InvalidInput as exc:
                form.place_errors(exc)
                integration.refresh_from_db()  # a refused rename may have been set
            else:
                messages.success(request, f"Integration {integration.name} saved.")
                return redirect("console:integration", id=integration.public_id)
        status = 400
    elif spec is not None and ctx.actor.can("integrations:write"):
        form = IntegrationForm(
            initial=IntegrationForm.initial_for(integration), spec=spec, integration=integration
        )
    context = {
        "integration": integration,
        "spec": spec,
        "form": form,
        "secrets": secrets_state(integration, spec),
        "tools": tools_of(ctx).filter(integration=integration).order_by("name"),
    }
    return render(request, "console/tools/integration.html", context, status=status)


@console_view("integrations:write")
def integration_delete(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    integration = owned(Integration, ctx, id)
    if request.method != "POST":
        return redirect("console:integration", id=integration.public_id)
    asking = confirmation(
        request,
        title="Delete integration",
        message=f"Delete the integration {integration.name} and its stored secrets?",
        details=[("Name", integration.name), ("Kind", integration.kind)],
    )
    if asking:
        return asking
    try:
        services.integration_delete(integration=integration, actor=ctx.actor)
    except Conflict as exc:
        messages.error(request, exc.detail)
        return redirect("console:integration", id=integration.public_id)
    messages.success(request, f"Integration {integration.name} deleted.")
    return redirect("console:integrations")


urlpatterns = [
    path("", tool_list, name="tools"),
    path("new/", tool_new, name="tool-new"),
    path("integrations/", integration_list, name="integrations"),
    path("integrations/new/", integration_new, name="integration-new"),
    path("integrations/<str:id>/", integration_detail, name="integration"),
    path("integrations/<str:id>/delete/", integration_delete, name="integration-delete"),
    path("<str:id>/", tool_detail, name="tool"),
    path("<str:id>/test/", tool_test, name="tool-test"),
    path("<str:id>/delete/", tool_delete, name="tool-delete"),
]
