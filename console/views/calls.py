"""The Calls pages: the calls list (the API's filters), a call's timeline, transcript, outcome
with its provenance and evidence, summary, recording, and the human re-tag. What is shown of a
call that awaits redaction follows calls.selectors, as the API does."""

import json
from dataclasses import dataclass
from typing import Any, cast

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from calls import recordings, services
from calls.models import Call, CallEvent, Outcome
from calls.selectors import (
    AWAITING_REDACTION,
    CallFilter,
    awaiting_redaction,
    visible_payload,
    with_outcome,
)
from calls.tagging import taxonomy_of
from console.context import console_view, owned, paginate, service_errors_to_form
from console.forms.calls import CallFilterForm, OutcomeForm
from tenants.access import TenantContext
from tenants.errors import Forbidden, ServiceError


@dataclass(frozen=True)
class Moment:
    """One event of a call's timeline, as the page shows it."""

    sequence: int
    at: str  # minutes:seconds since the call started
    kind: str
    payload: dict[str, Any]

    def json(self, key: str) -> str:
        return json.dumps(self.payload.get(key), indent=2, ensure_ascii=False, default=str)

    @property
    def arguments(self) -> str:
        return self.json("arguments")

    @property
    def result(self) -> str:
        return self.json("result")


def offset(ms: int) -> str:
    seconds = ms / 1000
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


def timeline(call: Call) -> list[Moment]:
    hidden = awaiting_redaction(call)
    events = CallEvent.objects.for_tenant(call.tenant).filter(call=call).order_by("sequence")
    return [
        Moment(e.sequence, offset(e.offset_ms), e.kind, visible_payload(e, hidden)) for e in events
    ]


def _call(ctx: TenantContext, public_id: str) -> Call:
    return owned(Call, ctx, public_id, with_outcome(Call.objects.for_tenant(ctx.tenant)))


@console_view("calls:read")
def index(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    form = CallFilterForm(ctx.tenant, request.GET)
    form.is_valid()  # a field in error is shown next to it and left out of the query
    query = form.query()
    calls = CallFilter(query, queryset=with_outcome(Call.objects.for_tenant(ctx.tenant))).qs
    context = {
        "form": form,
        "filtered": bool(query),
        "page": paginate(request, calls.order_by("-started_at", "-id")),
    }
    return render(request, "console/calls/list.html", context)


def _call_page(
    request: HttpRequest,
    ctx: TenantContext,
    call: Call,
    *,
    form: OutcomeForm | None = None,
    status: int = 200,
) -> HttpResponse:
    outcome: Outcome | None = next(iter(call.outcomes.all()), None)
    taxonomy = taxonomy_of(call)
    initial = {"label": outcome.label} if outcome else {}
    context = {
        "call": call,
        "outcome": outcome,
        "moments": timeline(call),
        "awaiting_redaction": awaiting_redaction(call),
        "awaiting_text": AWAITING_REDACTION,
        "form": form or OutcomeForm(taxonomy, initial=initial),
        "taxonomy": taxonomy,
        "fields": (call.extracted or {}).get("fields") or {},
    }
    return render(request, "console/calls/detail.html", context, status=status)


@console_view("calls:read")
def detail(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    return _call_page(request, ctx, _call(ctx, id))


@console_view("calls:listen")
def recording(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    """The recording as a WAV, for the page's player (and to download)."""
    # A streamed file, which Django serves like any response; console_view's type names only
    # HttpResponse.
    return cast(HttpResponse, recordings.download(_call(ctx, id)))


@require_POST
@console_view("calls:write")
def set_outcome(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    """A person decides the outcome (provenance `human`); it may change the bill."""
    call = _call(ctx, id)
    form = OutcomeForm(taxonomy_of(call), request.POST)
    if form.is_valid():
        try:
            outcome = services.outcome_set(
                call=call,
                actor=ctx.actor,
                label=form.cleaned_data["label"],
                rationale=form.cleaned_data["rationale"].strip(),
            )
        except Forbidden:
            raise
        except ServiceError as error:
            service_errors_to_form(form, error)
        else:
            messages.success(request, f"The outcome is now {outcome.label}.")
            return redirect("console:call", id=call.public_id)
    return _call_page(request, ctx, call, form=form, status=400)


@require_POST
@console_view("calls:write")
def retag(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    """Decide the outcome again with the version's current rules and model."""
    call = _call(ctx, id)
    try:
        outcome = services.outcome_retag(call=call, actor=ctx.actor)
    except Forbidden:
        raise
    except ServiceError as error:
        messages.error(request, error.detail)
    else:
        messages.success(request, f"Tagged again: {outcome.label} ({outcome.source}).")
    return redirect("console:call", id=call.public_id)


urlpatterns = [
    path("", index, name="calls"),
    path("<str:id>/", detail, name="call"),
    path("<str:id>/recording/", recording, name="call-recording"),
    path("<str:id>/outcome/", set_outcome, name="call-outcome"),
    path("<str:id>/retag/", retag, name="call-retag"),
]
