"""Operators keep the plan catalogue, adjust a tenant's subscription (discounts, caps) and read
the ledger, invoices and what Stripe sent. Ledger rows and issued documents are read-only."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from billing import services
from billing.models import (
    CreditNote,
    Invoice,
    InvoiceLine,
    Plan,
    Price,
    Reconciliation,
    StripeEvent,
    Subscription,
    UsageEvent,
)
from billing.pricing import validate_tiers
from tenants.admin import ReadOnlyAdmin, operator
from tenants.errors import ServiceError


@admin.register(UsageEvent)
class UsageEventAdmin(ReadOnlyAdmin):
    """The ledger, as it is: rows are never changed; corrections are new rows."""

    list_display = ["public_id", "tenant", "meter", "quantity", "reference", "occurred_at"]
    list_filter = ["meter"]
    search_fields = ["public_id", "reference", "tenant__name"]
    list_select_related = ["tenant"]


class PriceForm(forms.ModelForm):
    class Meta:
        model = Price
        fields = ["meter", "mode", "unit_amount", "included_quantity", "tiers"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        tiers = data.get("tiers") or []
        problems = (
            validate_tiers(data.get("mode", ""), tiers)
            if isinstance(tiers, list)
            else ["Tiers are a list."]
        )
        if problems:
            self.add_error("tiers", problems)
        return data


class PriceInline(admin.TabularInline):
    model = Price
    form = PriceForm
    extra = 0


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    """Changing a plan changes future invoices only: issued ones keep their price snapshot."""

    list_display = ["code", "name", "currency", "monthly_minimum", "trial_days", "is_default"]
    inlines = [PriceInline]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["tenant", "plan", "next_plan", "anchor", "discount_percent", "stripe_customer"]
    list_select_related = ["tenant", "plan", "next_plan"]
    fields = [
        "tenant",
        "plan",
        "next_plan",
        "next_plan_from",
        "anchor",
        "trial_ends_at",
        "stripe_customer",
        "discount_percent",
        "billing_email",
        *services.LIMIT_FIELDS,
    ]
    readonly_fields = [
        "tenant",
        "plan",
        "next_plan",
        "next_plan_from",
        "anchor",
        "trial_ends_at",
        "stripe_customer",
    ]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # every tenant gets one when it is first billed

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Subscription, form: Any, change: bool) -> None:
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        try:
            services.subscription_update(
                actor=operator(request), tenant=obj.tenant, changes=changes
            )
        except ServiceError as exc:
            messages.error(request, exc.detail)


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    fk_name = "invoice"
    fields = ["position", "kind", "description", "quantity", "unit_amount", "amount"]
    readonly_fields = ["position", "kind", "description", "quantity", "unit_amount", "amount"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "tenant", "number", "period_start", "status", "total", "currency"]
    list_filter = ["status"]
    search_fields = ["public_id", "tenant__name", "stripe_invoice"]
    list_select_related = ["tenant"]
    inlines = [InvoiceLineInline]
    actions = ["mark_paid", "mark_uncollectible", "mark_void"]

    def _mark(self, request: HttpRequest, invoices: QuerySet[Invoice], status: str) -> None:
        changed = sum(
            services.invoice_status_set(invoice, status, actor=operator(request))
            for invoice in invoices
        )
        messages.info(request, f"{changed} invoice(s) marked {status}.")

    @admin.action(description="Mark paid (outside Stripe)")
    def mark_paid(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        self._mark(request, queryset, Invoice.Status.PAID)

    @admin.action(description="Mark uncollectible")
    def mark_uncollectible(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        self._mark(request, queryset, Invoice.Status.UNCOLLECTIBLE)

    @admin.action(description="Void")
    def mark_void(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        self._mark(request, queryset, Invoice.Status.VOID)


@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "tenant", "invoice", "quantity", "amount", "created_at"]
    list_select_related = ["tenant", "invoice"]


@admin.register(Reconciliation)
class ReconciliationAdmin(ReadOnlyAdmin):
    list_display = [
        "tenant",
        "meter",
        "period_start",
        "ledger_quantity",
        "stripe_quantity",
        "checked_at",
    ]
    list_select_related = ["tenant"]


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "type", "received_at", "processed_at", "result"]
    list_filter = ["type"]
    search_fields = ["event_id"]
