"""The Agents pages: agents, their versions (drafts edited, published ones read), publishing,
diffs between versions and traffic splits. Every change goes through agents.services."""

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from agents.models import (
    Agent,
    AgentVersion,
    KnowledgeBase,
    PhoneNumber,
    PromptRevision,
    Tool,
    TrafficAllocation,
)
from agents.selectors import (
    knowledge_bases_for_version,
    rendered_instructions,
    tools_for_version,
    traffic_split,
    version_diff,
)
from agents.services import agents as services
from agents.services.prompts import (
    declarations_with_new_placeholders,
    prompt_text_render,
)
from console.context import (
    confirmation,
    console_view,
    owned,
    paginate,
    service_errors_to_form,
)
from console.forms.agents import (
    AgentForm,
    AgentSettingsForm,
    DiffForm,
    NewDraftForm,
    PreviewForm,
    RollbackForm,
    SplitForm,
    VersionForm,
    normalised_text,
    parse_prompt_values,
    version_initial,
    weight_field_name,
)
from tenants.access import TenantContext
from tenants.errors import InvalidInput, ServiceError

# --- Lookups ------------------------------------------------------------------------------------


def _versions_of(ctx: TenantContext, agent: Agent) -> list[AgentVersion]:
    return list(
        AgentVersion.objects.for_tenant(ctx.tenant)
        .filter(agent=agent)
        .select_related("prompt_revision")
        .order_by("-number")
    )


def _version(ctx: TenantContext, public_id: str) -> AgentVersion:
    queryset = AgentVersion.objects.for_tenant(ctx.tenant).select_related(
        "agent", "prompt_revision", "prompt_revision__template"
    )
    return owned(AgentVersion, ctx, public_id, queryset=queryset)


def split_summary(allocations: list[TrafficAllocation]) -> str:
    """`v2 · 100%` or `v1 50% · v2 50%`: what answers the agent's calls."""
    return " · ".join(f"v{a.version.number} {a.weight}%" for a in allocations)


# --- Agents -------------------------------------------------------------------------------------


@console_view("agents:read")
def index(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    agents: QuerySet[Agent] = Agent.objects.for_tenant(ctx.tenant).order_by("status", "name")
    page = paginate(request, agents)
    on_page = list(page.object_list)
    splits: dict[int, list[TrafficAllocation]] = {}
    for allocation in (
        TrafficAllocation.objects.for_tenant(ctx.tenant)
        .filter(agent__in=on_page)
        .select_related("version")
        .order_by("version__number")
    ):
        splits.setdefault(allocation.agent_id, []).append(allocation)
    numbers = dict(
        PhoneNumber.objects.for_tenant(ctx.tenant)
        .filter(agent__in=on_page, status=PhoneNumber.Status.ACTIVE)
        .values("agent")
        .annotate(n=Count("pk"))
        .values_list("agent", "n")
    )
    rows = [
        {"agent": a, "split": split_summary(splits.get(a.pk, [])), "numbers": numbers.get(a.pk, 0)}
        for a in on_page
    ]
    return render(request, "console/agents/list.html", {"page": page, "rows": rows})


@console_view("agents:write")
def agent_new(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    form = AgentForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            agent = services.agent_create(tenant=ctx.tenant, actor=ctx.actor, **form.cleaned_data)
        except ServiceError as exc:
            service_errors_to_form(form, exc)
        else:
            messages.success(request, f"Agent {agent.name} is created. Start its first draft.")
            return redirect("console:agent", id=agent.public_id)
    status = 400 if form.is_bound else 200
    return render(request, "console/agents/new.html", {"form": form}, status=status)


def _agent_page(
    request: HttpRequest,
    ctx: TenantContext,
    agent: Agent,
    settings_form: AgentSettingsForm | None = None,
) -> HttpResponse:
    versions = _versions_of(ctx, agent)
    settings_form = settings_form or AgentSettingsForm(
        initial={
            "name": agent.name,
            "description": agent.description,
            "fallback_number": agent.fallback_number,
            "status": agent.status,
        }
    )
    published = [v for v in versions if v.status == AgentVersion.Status.PUBLISHED]
    context = {
        "agent": agent,
        "settings_form": settings_form,
        "page": paginate(request, versions),
        "has_versions": bool(versions),
        "split": traffic_split(agent),
        "draft_form": NewDraftForm(
            versions=versions, initial={"based_on": versions[0].public_id if versions else ""}
        ),
        "rollback_form": RollbackForm(versions=published) if published else None,
        "can_compare": len(versions) > 1,
    }
    return render(
        request,
        "console/agents/agent.html",
        context,
        status=400 if settings_form.is_bound else 200,
    )


@console_view("agents:read")
def agent_page(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    return _agent_page(request, ctx, owned(Agent, ctx, id))


@require_POST
@console_view("agents:write")
def agent_update(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    agent = owned(Agent, ctx, id)
    form = AgentSettingsForm(request.POST)
    if form.is_valid():
        try:
            services.agent_update(agent=agent, actor=ctx.actor, **form.cleaned_data)
        except ServiceError as exc:
            agent.refresh_from_db()
            service_errors_to_form(form, exc)
        else:
            messages.success(request, "The agent's settings are saved.")
            return redirect("console:agent", id=agent.public_id)
    return _agent_page(request, ctx, agent, settings_form=form)


@require_POST
@console_view("agents:write")
def version_create(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    agent = owned(Agent, ctx, id)
    form = NewDraftForm(request.POST, versions=_versions_of(ctx, agent))
    if not form.is_valid():
        messages.error(request, "Choose a version of this agent to copy, or an empty draft.")
        return redirect("console:agent", id=agent.public_id)
    based_on = form.cleaned_data["based_on"]
    source = _version(ctx, based_on) if based_on else None
    version = services.version_create(agent=agent, actor=ctx.actor, based_on=source)
    copied = f" (a copy of version {source.number})" if source else ""
    messages.success(request, f"Draft version {version.number}{copied} is ready to edit.")
    return redirect("console:version", id=version.public_id)


@require_POST
@console_view("agents:publish")
def agent_rollback(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    agent = owned(Agent, ctx, id)
    form = RollbackForm(request.POST, versions=_versions_of(ctx, agent))
    if not form.is_valid():
        messages.error(request, "Choose a published version of this agent to roll back to.")
        return redirect("console:agent", id=agent.public_id)
    version = _version(ctx, form.cleaned_data["version"])
    asked = confirmation(
        request,
        title=f"Roll back to version {version.number}",
        message=f"All of {agent.name}'s calls will go to version {version.number}; the current "
        "traffic split ends. Callers are dealt out afresh.",
        details=[("Now answering", split_summary(traffic_split(agent)) or "nothing")],
    )
    if asked:
        return asked
    try:
        services.agent_rollback(agent=agent, actor=ctx.actor, version=version)
    except ServiceError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"Version {version.number} now takes all calls.")
    return redirect("console:agent", id=agent.public_id)


# --- Versions -----------------------------------------------------------------------------------


def _declared(version: AgentVersion) -> list[Any]:
    revision = version.prompt_revision
    return list(revision.variables) if revision else []


def _choices(ctx: TenantContext) -> dict[str, Any]:
    return {
        "tools": list(Tool.objects.for_tenant(ctx.tenant).order_by("name")),
        "knowledge_bases": list(KnowledgeBase.objects.for_tenant(ctx.tenant).order_by("name")),
    }


def _version_form(ctx: TenantContext, version: AgentVersion, data: Any = None) -> VersionForm:
    initial = version_initial(
        version,
        tools=[t.public_id for t in tools_for_version(version)],
        knowledge_bases=[k.public_id for k in knowledge_bases_for_version(version)],
    )
    return VersionForm(data, initial=initial, declared=_declared(version), **_choices(ctx))


def preview(version: AgentVersion, instructions: str, values_text: str) -> dict[str, Any]:
    """The instructions as a call would receive them, rendered by the same code as publishing
    does; or what stops them from rendering."""
    body = normalised_text(instructions)
    if not body:
        return {"rendered": "", "problems": [], "empty": True}
    declared = declarations_with_new_placeholders(body, _declared(version))
    try:
        values = parse_prompt_values(values_text, declared)
        return {"rendered": prompt_text_render(body, declared, values), "problems": []}
    except forms.ValidationError as exc:
        return {"rendered": "", "problems": exc.messages}
    except InvalidInput as exc:
        problems = [m for messages_ in exc.errors.values() for m in messages_] or [exc.detail]
        return {"rendered": "", "problems": problems}


PROBLEM_LABELS = {"prompt_revision": "Instructions", "variables": "Prompt values"}


def _labelled(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Publishing problems under the names the editor's fields carry."""
    labels = {name: str(field.label or name) for name, field in VersionForm.base_fields.items()}
    labels.update(PROBLEM_LABELS)
    return [(labels.get(field.split(".")[0], field), message) for field, message in problems]


def _version_page(
    request: HttpRequest,
    ctx: TenantContext,
    version: AgentVersion,
    form: VersionForm | None = None,
) -> HttpResponse:
    editable = version.is_draft and ctx.actor.can("agents:write")
    if editable and form is None:
        form = _version_form(ctx, version)
    revision: PromptRevision | None = version.prompt_revision
    context: dict[str, Any] = {
        "version": version,
        "agent": version.agent,
        "form": form if editable else None,
        "revision": revision,
        "variables": _declared(version),
        "tools": tools_for_version(version),
        "knowledge_bases": knowledge_bases_for_version(version),
        "instructions": rendered_instructions(version),
        "problems": _labelled(services.publish_problems(version)) if version.is_draft else [],
        "in_split": any(a.version_id == version.pk for a in traffic_split(version.agent)),
    }
    if form is not None and editable:
        data = form.data if form.is_bound else form.initial
        context["preview"] = preview(
            version, data.get("instructions", ""), data.get("prompt_variables", "")
        )
    status = 400 if form is not None and form.is_bound else 200
    return render(request, "console/agents/version.html", context, status=status)


@console_view("agents:read")
def version_page(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    return _version_page(request, ctx, _version(ctx, id))


def _as_instruction_errors(error: ServiceError) -> ServiceError:
    """A prompt template's complaints (about its body and variables) are about the text typed
    into the instructions field."""
    if not isinstance(error, InvalidInput):
        return error
    errors: dict[str, list[str]] = {}
    for field, found in error.errors.items():
        target = "instructions" if field.startswith(("body", "variables")) else field
        errors.setdefault(target, []).extend(found)
    return InvalidInput(error.detail, errors=errors)


@require_POST
@console_view("agents:write")
def version_save(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    version = _version(ctx, id)
    form = _version_form(ctx, version, data=request.POST)
    if form.is_valid():
        fields = dict(form.cleaned_data)
        instructions = fields.pop("instructions")
        fields["tools"] = list(
            Tool.objects.for_tenant(ctx.tenant).filter(public_id__in=fields["tools"])
        )
        fields["knowledge_bases"] = list(
            KnowledgeBase.objects.for_tenant(ctx.tenant).filter(
                public_id__in=fields["knowledge_bases"]
            )
        )
        try:
            services.version_update_from_text(
                version=version, actor=ctx.actor, instructions=instructions, **fields
            )
        except InvalidInput as exc:
            version = _version(ctx, id)
            service_errors_to_form(form, _as_instruction_errors(exc))
        except ServiceError as exc:
            # Not about a field (the version is published meanwhile, say): the page says why.
            messages.error(request, exc.detail)
            return redirect("console:version", id=version.public_id)
        else:
            messages.success(request, f"Draft version {version.number} is saved.")
            return redirect("console:version", id=version.public_id)
    return _version_page(request, ctx, version, form)


@require_POST
@console_view("agents:read")
def version_preview(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    """Renders what the editor holds; saves nothing, so reading is enough (as in the API)."""
    version = _version(ctx, id)
    form = PreviewForm(request.POST)
    form.is_valid()  # both fields are optional text: the form is always valid
    context = preview(
        version,
        form.cleaned_data.get("instructions", ""),
        form.cleaned_data.get("prompt_variables", ""),
    )
    return render(request, "console/agents/_preview.html", {"preview": context})


@require_POST
@console_view("agents:publish")
def version_publish(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    version = _version(ctx, id)
    activate = request.POST.get("activate", "yes") != "no"
    try:
        services.version_publish(version=version, actor=ctx.actor, activate=activate)
    except ServiceError as exc:
        messages.error(request, f"Version {version.number} is not published: {exc.detail}")
        return redirect("console:version", id=version.public_id)
    if activate:
        messages.success(request, f"Version {version.number} is published and takes all calls.")
    else:
        messages.success(
            request,
            f"Version {version.number} is published. Give it a share of the calls in the "
            "traffic split.",
        )
    return redirect("console:agent", id=version.agent.public_id)


@require_POST
@console_view("agents:publish")
def version_archive(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    version = _version(ctx, id)
    asked = confirmation(
        request,
        title=f"Archive version {version.number}",
        message="An archived version can no longer take calls or be rolled back to. "
        "Its history stays.",
    )
    if asked:
        return asked
    try:
        services.version_archive(version=version, actor=ctx.actor)
    except ServiceError as exc:
        messages.error(request, exc.detail)
        return redirect("console:version", id=version.public_id)
    messages.success(request, f"Version {version.number} is archived.")
    return redirect("console:agent", id=version.agent.public_id)


@require_POST
@console_view("agents:write")
def version_delete(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    version = _version(ctx, id)
    asked = confirmation(
        request,
        title=f"Delete draft version {version.number}",
        message="The draft and its changes are gone for good.",
    )
    if asked:
        return asked
    agent = version.agent
    try:
        services.version_delete(version=version, actor=ctx.actor)
    except ServiceError as exc:
        messages.error(request, exc.detail)
        return redirect("console:version", id=version.public_id)
    messages.success(request, f"Draft version {version.number} is deleted.")
    return redirect("console:agent", id=agent.public_id)


# --- Diff and traffic ---------------------------------------------------------------------------


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value) or "—"
    if isinstance(value, list | dict):
        return json.dumps(value, indent=2, ensure_ascii=False)
    return str(value)


def diff_lines(unified: str) -> list[dict[str, str]]:
    """The unified diff a line at a time, each marked added, removed or context."""
    lines = []
    for line in unified.splitlines():
        if line.startswith(("+++", "---")):
            continue
        kind = {"+": "added", "-": "removed", "@": "hunk"}.get(line[:1], "same")
        lines.append({"kind": kind, "text": line})
    return lines


@console_view("agents:read")
def agent_diff(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    agent = owned(Agent, ctx, id)
    versions = _versions_of(ctx, agent)
    defaults = {
        "a": versions[1].public_id if len(versions) > 1 else "",
        "b": versions[0].public_id if versions else "",
    }
    data = {key: request.GET.get(key, default) for key, default in defaults.items()}
    form = DiffForm(data, versions=versions)
    context: dict[str, Any] = {"agent": agent, "form": form, "versions": versions}
    if versions and form.is_valid():
        old = _version(ctx, form.cleaned_data["a"])
        new = _version(ctx, form.cleaned_data["b"])
        diff = version_diff(old, new)
        context.update(
            old=old,
            new=new,
            changes=[
                {
                    "field": field.replace("_", " ").capitalize(),
                    "from": _shown(change["from"]),
                    "to": _shown(change["to"]),
                    "long": "\n" in _shown(change["from"]) + _shown(change["to"]),
                }
                for field, change in diff["changes"].items()
            ],
            lines=diff_lines(diff["instructions_diff"]),
        )
    return render(request, "console/agents/diff.html", context)


def _split_errors(form: SplitForm, error: ServiceError) -> None:
    """The service numbers allocations in the order given; put each problem by its weight."""
    if not isinstance(error, InvalidInput):
        form.add_error(None, error.detail)
        return
    given = form.allocations()
    for field, found in error.errors.items():
        parts = field.split(".")
        target = None
        if len(parts) > 1 and parts[1].isdigit() and int(parts[1]) < len(given):
            target = weight_field_name(given[int(parts[1])][0])
        for message in found:
            form.add_error(target, message)


@console_view("agents:publish")
def agent_split(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    agent = owned(Agent, ctx, id)
    published = [
        v for v in reversed(_versions_of(ctx, agent)) if v.status == AgentVersion.Status.PUBLISHED
    ]
    weights = {a.version_id: a.weight for a in traffic_split(agent)}
    form = SplitForm(
        request.POST if request.method == "POST" else None, versions=published, weights=weights
    )
    if request.method == "POST" and form.is_valid():
        try:
            split = services.agent_set_traffic_split(
                agent=agent, actor=ctx.actor, allocations=form.allocations()
            )
        except ServiceError as exc:
            _split_errors(form, exc)
        else:
            messages.success(request, f"Calls now go to {split_summary(split)}.")
            return redirect("console:agent", id=agent.public_id)
    context = {"agent": agent, "form": form, "published": published}
    return render(
        request, "console/agents/split.html", context, status=400 if form.is_bound else 200
    )


urlpatterns = [
    path("", index, name="agents"),
    path("new/", agent_new, name="agent-new"),
    path("versions/<str:id>/", version_page, name="version"),
    path("versions/<str:id>/save/", version_save, name="version-save"),
    path("versions/<str:id>/preview/", version_preview, name="version-preview"),
    path("versions/<str:id>/publish/", version_publish, name="version-publish"),
    path("versions/<str:id>/archive/", version_archive, name="version-archive"),
    path("versions/<str:id>/delete/", version_delete, name="version-delete"),
    path("<str:id>/", agent_page, name="agent"),
    path("<str:id>/settings/", agent_update, name="agent-update"),
    path("<str:id>/drafts/", version_create, name="version-create"),
    path("<str:id>/diff/", agent_diff, name="agent-diff"),
    path("<str:id>/split/", agent_split, name="agent-split"),
    path("<str:id>/rollback/", agent_rollback, name="agent-rollback"),
]
