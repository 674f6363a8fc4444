"""Billing in the console: the account's standing, the current period's preview, invoices with
the usage behind each line, exports, and the plan and caps. Reads need `billing:read` (owners
and finance); changing the plan or the caps needs `billing:write` (owners). Everything comes from
billing.selectors and billing.services, as the /v1/billing API does."""

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.contrib import messages
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from agents.models import Agent
from billing import pdf, selectors, services, stripe_sync
from billing.exports import csv_response
from billing.models import CreditNote, Invoice, Meter, UsageEvent
from billing.money import format_amount
from console import charts
from console.context import (
    confirmation,
    console_view,
    owned,
    paginate,
    service_errors_to_form,
)
from console.forms.billing import CapsForm, PlanChangeForm, UsageFilterForm
from tenants.access import TenantContext
from tenants.errors import InvalidInput

RECENT_CREDIT_NOTES = 10
# A trial can be a long period: the usage chart shows at most this many of its latest days.
CHART_DAYS = 62


def call_url(call_id: str) -> str:
    """The console page of a billed call: its outcome and the evidence it was billed on."""
    return reverse("console:call", kwargs={"id": call_id})


def money(amount: int | None, currency: str) -> str:
    return "" if amount is None else format_amount(amount, currency)


@dataclass(frozen=True)
class LineRow:
    """An invoice line, or a preview's draft line, as the tables show it."""

    position: int
    description: str
    quantity: int
    unit: str
    amount: str
    usage_url: str | None  # the usage events it charges (usage lines only)


def preview_rows(preview: dict[str, Any]) -> list[LineRow]:
    usage = reverse("console:usage")
    return [
        LineRow(
            line["position"],
            line["description"],
            line["quantity"],
            money(line["unit_amount"], preview["currency"]),
            money(line["amount"], preview["currency"]),
            f"{usage}?line={line['position']}" if line["usage_url"] else None,
        )
        for line in preview["lines"]
    ]


def invoice_rows(invoice: Invoice, document: dict[str, Any]) -> list[LineRow]:
    usage = reverse("console:invoice-usage", kwargs={"id": invoice.public_id})
    rows = []
    for row in document["lines"]:
        line = selectors.line_data(invoice, row["line"])
        rows.append(
            LineRow(
                line["position"],
                line["description"],
                line["quantity"],
                row["unit"],
                row["amount"],
                f"{usage}?line={line['position']}" if line["usage_url"] else None,
            )
        )
    return rows


def usage_chart(tenant_events: QuerySet[Any], start: date, end: date) -> SafeString:
    """Net resolved conversations per day of the current period, up to today."""
    groups = selectors.usage_summary(tenant_events, "day")
    by_day = {
        row["day"]: row["quantity"] for row in groups if row["meter"] == Meter.RESOLVED_CONVERSATION
    }
    last = min(end - timedelta(days=1), timezone.localdate())
    first = max(start, last - timedelta(days=CHART_DAYS - 1))
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)] or [first]
    values = [max(by_day.get(day.isoformat(), 0), 0) for day in days]
    return charts.column_chart(
        chart_id="usage-per-day",
        title="Resolved conversations per day, this period",
        description=(
            f"From {days[0]:%d %b} to {days[-1]:%d %b}: {sum(values)} resolved conversations "
            "billed (net of reversals)."
        ),
        labels=[f"{day:%d %b}" for day in days],
        series=[charts.Series("Resolved conversations", charts.ACCENT_COLOUR, values)],
        empty="No resolved conversation yet this period: each call whose outcome is resolved "
        "counts one unit.",
    )


@console_view("billing:read")
def overview(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    account = selectors.account_data(ctx.tenant, stripe_sync.enabled())
    preview = selectors.preview_data(ctx.tenant)
    currency = account["currency"]
    events = selectors.in_current_period(UsageEvent.objects.for_tenant(ctx.tenant), ctx.tenant)
    invoices = paginate(
        request,
        Invoice.objects.for_tenant(ctx.tenant)
        .select_related("plan")
        .order_by("-period_start", "-id"),
    )
    notes = list(
        CreditNote.objects.for_tenant(ctx.tenant)
        .select_related("invoice")
        .order_by("-created_at", "-id")[: RECENT_CREDIT_NOTES + 1]
    )
    limits = account["limits"]
    context = {
        "account": account,
        "units": sum(account["usage"].values()),
        "caps": [
            ("Usage soft limit", limits["usage_soft_limit"], ""),
            ("Usage hard limit", limits["usage_hard_limit"], ""),
            ("Spend soft limit", money(limits["spend_soft_limit"], currency), ""),
            ("Spend hard limit", money(limits["spend_hard_limit"], currency), ""),
        ],
        "usage_chart": usage_chart(
            events,
            timezone.localdate(account["period_start"]),
            timezone.localdate(account["period_end"]),
        ),
        "preview": preview,
        "preview_rows": preview_rows(preview),
        "preview_subtotal": money(preview["subtotal"], preview["currency"]),
        "preview_discount": money(preview["discount"], preview["currency"]),
        "preview_cost": money(preview["cost_per_resolution"], preview["currency"]),
        "page": invoices,
        "invoices": [
            (
                invoice,
                money(invoice.total, invoice.currency),
                money(selectors.cost_per_resolution(invoice), invoice.currency),
            )
            for invoice in invoices
        ],
        "credit_notes": [
            (note, money(note.amount, note.invoice.currency))
            for note in notes[:RECENT_CREDIT_NOTES]
        ],
        "more_credit_notes": len(notes) > RECENT_CREDIT_NOTES,
    }
    return render(request, "console/billing/overview.html", context)


def _invoice(ctx: TenantContext, public_id: str) -> Invoice:
    scoped = (
        Invoice.objects.for_tenant(ctx.tenant)
        .select_related("plan", "tenant")
        .prefetch_related("lines", "credit_notes")
    )
    return owned(Invoice, ctx, public_id, scoped)


@console_view("billing:read")
def invoice(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    found = _invoice(ctx, id)
    document = selectors.invoice_document(found)
    context = {
        **document,
        "rows": invoice_rows(found, document),
        "cost_per_resolution": money(selectors.cost_per_resolution(found), found.currency),
        "credit_notes": [
            (note, amount, reverse("console:credit-note-usage", kwargs={"id": note.public_id}))
            for note, amount in document["credit_notes"]
        ],
    }
    return render(request, "console/billing/invoice.html", context)


@console_view("billing:read")
def invoice_csv(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    found = _invoice(ctx, id)
    export = csv_response(
        selectors.invoice_rows(found), f"invoice-{found.number}.csv", tenant=ctx.tenant
    )
    return export  # type: ignore[return-value]  # console_view is typed for HttpResponse only


@console_view("billing:read")
def invoice_pdf(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    found = _invoice(ctx, id)
    response = HttpResponse(
        pdf.invoice_pdf(selectors.invoice_document(found)), content_type="application/pdf"
    )
    response["Content-Disposition"] = f'attachment; filename="invoice-{found.number}.pdf"'
    return response


def _position(request: HttpRequest) -> int | None:
    """The `?line=` of a drill-down: a line's position, or 404 for anything else."""
    position = request.GET.get("line")
    if position is None:
        return None
    if not (position.isascii() and position.isdigit()):  # "²" is a digit to isdigit()
        raise Http404("A line's position is a whole number.")
    return int(position)


def usage_list(
    request: HttpRequest,
    ctx: TenantContext,
    events: QuerySet[Any],
    *,
    title: str,
    intro: str,
    back: tuple[str, str],
    form: UsageFilterForm | None = None,
) -> HttpResponse:
    """A page of usage events, newest first, each leading to the call it bills."""
    events = selectors.with_report_state(events.select_related("reverses"))
    page = paginate(request, events.order_by("-occurred_at", "-id"))
    agents = dict(
        Agent.objects.for_tenant(ctx.tenant)
        .filter(public_id__in={event.agent for event in page if event.agent})
        .values_list("public_id", "name")
    )
    rows = [
        (
            event,
            call_url(event.reference) if event.reference.startswith("call_") else None,
            agents.get(event.agent, event.agent),
        )
        for event in page
    ]
    context = {
        "title": title,
        "intro": intro,
        "back": back,
        "form": form,
        "page": page,
        "rows": rows,
        "stripe": stripe_sync.enabled(),
    }
    return render(request, "console/billing/usage.html", context)


@console_view("billing:read")
def invoice_usage(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    found = _invoice(ctx, id)
    position = _position(request)
    events = selectors.invoice_usage_events(found, position)
    if events is None:
        raise Http404("This invoice has no usage line at that position.")
    line = next((line for line in found.lines.all() if line.position == position), None)
    return usage_list(
        request,
        ctx,
        events,
        title=f"Invoice {found.number}: usage" + (f" of line {position}" if position else ""),
        intro=(f"{line.description}." if line else "Every usage event the invoice charges.")
        + " Each event is a conversation: open it to see its outcome and the evidence for it.",
        back=(
            reverse("console:invoice", kwargs={"id": found.public_id}),
            f"Invoice {found.number}",
        ),
    )


@console_view("billing:read")
def credit_note_usage(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    note = owned(
        CreditNote, ctx, id, CreditNote.objects.for_tenant(ctx.tenant).select_related("invoice")
    )
    return usage_list(
        request,
        ctx,
        selectors.credit_note_events(note),
        title=f"Credit note {note.public_id}",
        intro=f"{note.reason}: the reversals it pays back.",
        back=(
            reverse("console:invoice", kwargs={"id": note.invoice.public_id}),
            f"Invoice {note.invoice.number}",
        ),
    )


@console_view("billing:read")
def usage(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    """The current period's usage, all of it or one preview line's (`?line=`), filterable."""
    events = selectors.in_current_period(UsageEvent.objects.for_tenant(ctx.tenant), ctx.tenant)
    position = _position(request)
    intro = "Usage recorded in the current billing period; it is invoiced when the period closes."
    query = request.GET.copy()
    if position is not None:
        lines = selectors.preview_data(ctx.tenant)["lines"]
        line = next((line for line in lines if line["position"] == position), None)
        if line is None or not line["meter"]:
            raise Http404("The preview has no usage line at that position.")
        query["meter"] = line["meter"]
        intro = f"Line {position} of the preview: {line['description']}. {intro}"
    form = UsageFilterForm(query)
    if form.is_valid():
        if form.cleaned_data["meter"]:
            events = events.filter(meter=form.cleaned_data["meter"])
        if form.cleaned_data["call"]:
            events = events.filter(reference=form.cleaned_data["call"].strip())
    return usage_list(
        request,
        ctx,
        events,
        title="Usage this period",
        intro=intro,
        back=(reverse("console:billing"), "Billing"),
        form=form,
    )


def plan_page(
    request: HttpRequest,
    ctx: TenantContext,
    *,
    plan_form: PlanChangeForm | None = None,
    caps_form: CapsForm | None = None,
    status: int = 200,
) -> HttpResponse:
    account = selectors.account_data(ctx.tenant, stripe_sync.enabled())
    plans = list(selectors.public_plans())
    current = account["next_plan"] or account["plan"]
    context = {
        "account": account,
        "plans": [
            (
                plan,
                [(price, money(price.unit_amount, plan.currency)) for price in plan.prices.all()],
                money(plan.monthly_minimum, plan.currency) if plan.monthly_minimum else "",
            )
            for plan in plans
        ],
        "plan_form": plan_form or PlanChangeForm(plans=plans, initial={"plan": current}),
        "caps_form": caps_form
        or CapsForm(
            currency=account["currency"],
            initial=CapsForm.initial_for(
                account["limits"], account["billing_email"], account["currency"]
            ),
        ),
    }
    return render(request, "console/billing/plan.html", context, status=status)


@console_view("billing:read")
def plan(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    return plan_page(request, ctx)


@require_POST
@console_view("billing:write")
def plan_change(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    form = PlanChangeForm(request.POST, plans=list(selectors.public_plans()))
    if not form.is_valid():
        return plan_page(request, ctx, plan_form=form, status=400)
    account = selectors.account_data(ctx.tenant, stripe_sync.enabled())
    code = form.cleaned_data["plan"]
    starts = timezone.localtime(account["period_end"])
    # Moving to another plan changes what the tenant pays: ask first. Choosing the current plan
    # only withdraws a pending change.
    if code != account["plan"]:
        asked = confirmation(
            request,
            title="Change plan",
            message=(
                f"Move to the {code} plan from {starts:%Y-%m-%d %H:%M} (the next billing "
                f"period)? The current period stays on {account['plan']}."
            ),
            danger=False,
            details=[("Current plan", account["plan"]), ("New plan", code)],
        )
        if asked is not None:
            return asked
    try:
        subscription = services.plan_change(actor=ctx.actor, tenant=ctx.tenant, plan_code=code)
    except InvalidInput as exc:
        service_errors_to_form(form, exc)
        return plan_page(request, ctx, plan_form=form, status=400)
    if subscription.next_plan is None:
        messages.success(request, f"You stay on the {subscription.plan.code} plan.")
    else:
        messages.success(
            request,
            f"From {starts:%Y-%m-%d} you will be on the {code} plan; this period stays on "
            f"{subscription.plan.code}.",
        )
    return redirect("console:billing-plan")


@require_POST
@console_view("billing:write")
def caps(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    account = selectors.account_data(ctx.tenant, stripe_sync.enabled())
    form = CapsForm(request.POST, currency=account["currency"])
    if form.is_valid():
        try:
            services.subscription_update(actor=ctx.actor, tenant=ctx.tenant, changes=form.changes())
        except InvalidInput as exc:
            service_errors_to_form(form, exc)
        else:
            messages.success(request, "Caps saved. They apply to the current period at once.")
            return redirect("console:billing-plan")
    return plan_page(request, ctx, caps_form=form, status=400)


urlpatterns = [
    path("", overview, name="billing"),
    path("usage/", usage, name="usage"),
    path("plan/", plan, name="billing-plan"),
    path("plan/change/", plan_change, name="billing-plan-change"),
    path("plan/caps/", caps, name="billing-caps"),
    path("invoices/<str:id>/", invoice, name="invoice"),
    path("invoices/<str:id>/usage/", invoice_usage, name="invoice-usage"),
    path("invoices/<str:id>/csv/", invoice_csv, name="invoice-csv"),
    path("invoices/<str:id>/pdf/", invoice_pdf, name="invoice-pdf"),
    path("credit-notes/<str:id>/usage/", credit_note_usage, name="credit-note-usage"),
]
