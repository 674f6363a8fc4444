"""/v1/billing: what the tenant is billed for and why. `billing:read` (owners, finance) reads;
`billing:write` (owners) changes the plan and the caps."""

from typing import Any

import django_filters
from django.db.models import QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.template.loader import render_to_string
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from billing import selectors, services, stripe_sync
from billing.exports import csv_response
from billing.models import CreditNote, Invoice, Meter, Plan, UsageEvent
from billing.money import format_amount
from tenants.api.base import TenantScopedMixin, TenantViewSet
from tenants.api.filters import IsoDateTimeFilter
from tenants.api.pagination import CursorPagination
from tenants.errors import InvalidInput


class PriceSerializer(serializers.Serializer[Any]):
    meter = serializers.CharField()
    mode = serializers.CharField()
    unit_amount = serializers.IntegerField()
    included_quantity = serializers.IntegerField()
    tiers = serializers.JSONField()


class PlanSerializer(serializers.ModelSerializer[Plan]):
    prices = PriceSerializer(many=True, read_only=True)

    class Meta:
        model = Plan
        fields = ["code", "name", "currency", "monthly_minimum", "trial_days", "prices"]


class LineSerializer(serializers.Serializer[Any]):
    position = serializers.IntegerField()
    kind = serializers.CharField()
    meter = serializers.CharField()
    description = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_amount = serializers.IntegerField(allow_null=True)
    amount = serializers.IntegerField()
    usage_url = serializers.CharField(
        allow_null=True, help_text="The usage events this line charges (usage lines only)."
    )


class CreditNoteSerializer(serializers.ModelSerializer[CreditNote]):
    id = serializers.CharField(source="public_id", read_only=True)
    invoice = serializers.CharField(source="invoice.public_id", read_only=True)
    usage_url = serializers.SerializerMethodField()

    class Meta:
        model = CreditNote
        fields = [
            "id",
            "invoice",
            "meter",
            "quantity",
            "amount",
            "reason",
            "created_at",
            "stripe_credit_note",
            "usage_url",
        ]

    def get_usage_url(self, note: CreditNote) -> str:
        return f"/v1/billing/credit-notes/{note.public_id}/usage"


class InvoiceSerializer(serializers.ModelSerializer[Invoice]):
    id = serializers.CharField(source="public_id", read_only=True)
    plan = serializers.CharField(source="plan.code", read_only=True)
    lines = serializers.SerializerMethodField()
    credit_notes = CreditNoteSerializer(many=True, read_only=True)
    total_formatted = serializers.SerializerMethodField()
    cost_per_resolution = serializers.SerializerMethodField()

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "status",
            "period_start",
            "period_end",
            "plan",
            "currency",
            "quantities",
            "subtotal",
            "discount",
            "total",
            "total_formatted",
            "cost_per_resolution",
            "lines",
            "credit_notes",
            "finalized_at",
            "paid_at",
            "payment_failed_at",
            "stripe_invoice",
        ]

    def get_lines(self, invoice: Invoice) -> Any:
        return LineSerializer(
            [selectors.line_data(invoice, line) for line in invoice.lines.all()], many=True
        ).data

    def get_total_formatted(self, invoice: Invoice) -> str:
        return format_amount(invoice.total, invoice.currency)

    def get_cost_per_resolution(self, invoice: Invoice) -> int | None:
        """The invoice's total (less credit notes) per resolved conversation, in minor units."""
        return selectors.cost_per_resolution(invoice)


class UsageEventSerializer(serializers.ModelSerializer[UsageEvent]):
    id = serializers.CharField(source="public_id", read_only=True)
    call = serializers.CharField(source="reference", read_only=True)
    call_url = serializers.SerializerMethodField(
        help_text="The call, with its outcome and the evidence behind it."
    )
    reverses = serializers.CharField(
        source="reverses.public_id", read_only=True, allow_null=True, default=None
    )
    reported_to_stripe = serializers.SerializerMethodField()

    class Meta:
        model = UsageEvent
        fields = [
            "id",
            "meter",
            "quantity",
            "call",
            "call_url",
            "agent",
            "version",
            "reason",
            "reverses",
            "occurred_at",
            "recorded_at",
            "reported_to_stripe",
        ]

    def get_call_url(self, event: UsageEvent) -> str:
        return f"/v1/calls/{event.reference}"

    def get_reported_to_stripe(self, event: UsageEvent) -> bool:
        return bool(getattr(event, "reported", False))


class UsageFilter(django_filters.FilterSet):
    meter = django_filters.ChoiceFilter(choices=Meter.choices)
    agent = django_filters.CharFilter(label="agt_…")
    version = django_filters.CharFilter(label="ver_…")
    call = django_filters.CharFilter(field_name="reference", label="call_…")
    since = IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")
    period = django_filters.ChoiceFilter(
        choices=[("current", "current")], method="filter_period", label="current"
    )

    class Meta:
        model = UsageEvent
        fields = ["meter", "agent", "version", "call", "since", "until", "period"]

    def filter_period(self, events: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        return selectors.in_current_period(events, self.request.tenant)


class UsagePagination(CursorPagination):
    ordering = ("-occurred_at", "-id")


def usage_page(view: TenantViewSet, request: Request, events: QuerySet[Any]) -> Response:
    """A page of usage events behind an invoice line or a credit note."""
    events = selectors.with_report_state(events.select_related("reverses"))
    paginator = UsagePagination()
    page = paginator.paginate_queryset(events, request, view=view)
    return paginator.get_paginated_response(UsageEventSerializer(page, many=True).data)


class UsageEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """The usage ledger: one event per resolved conversation (+1) or reversal (-1), each
    linking to its call, whose outcome and evidence say why it was billed."""

    model = UsageEvent
    permission_family = "billing"
    serializer_class = UsageEventSerializer
    filterset_class = UsageFilter
    pagination_class = UsagePagination

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return selectors.with_report_state(queryset.select_related("reverses"))

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        request.tenant = self.tenant  # type: ignore[attr-defined]  # read by UsageFilter

    @extend_schema(
        parameters=[
            OpenApiParameter("group_by", str, enum=["day", "agent", "version"], required=True)
        ],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=False, methods=["get"])
    def summary(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Net units by day, agent or version, for the same filters as the list."""
        group_by = request.query_params.get("group_by", "")
        if group_by not in ("day", "agent", "version"):
            raise InvalidInput.field("group_by", "Use day, agent or version.")
        groups = selectors.usage_summary(self.filter_queryset(self.get_queryset()), group_by)
        return Response({"group_by": group_by, "groups": groups})

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=False, methods=["get"])
    def export(self, request: Request, *args: Any, **kwargs: Any) -> StreamingHttpResponse:
        """The filtered ledger as CSV, oldest first."""
        events = self.filter_queryset(self.get_queryset()).order_by("occurred_at", "id")
        return csv_response(selectors.usage_rows(events), "usage.csv", tenant=self.tenant)


class InvoiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Invoices, one per closed period, with lines that drill down to the usage they charge."""

    model = Invoice
    permission_family = "billing"
    serializer_class = InvoiceSerializer
    pagination_class = type(
        "InvoicePagination", (CursorPagination,), {"ordering": ("-period_start", "-id")}
    )

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.select_related("plan").prefetch_related("lines", "credit_notes__invoice")

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "line", {"type": "integer", "minimum": 1}, description="A usage line's position"
            )
        ],
        responses=UsageEventSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def usage(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The usage events the invoice charges (or one usage line, with `line`), each
        linking to its call."""
        invoice = self.get_object()
        position = request.query_params.get("line")
        if position is not None and not (position.isascii() and position.isdigit()):
            raise InvalidInput.field("line", "A line's position, a whole number.")
        events = selectors.invoice_usage_events(invoice, int(position) if position else None)
        if events is None:
            raise NotFound("This invoice has no usage line at that position.")
        return usage_page(self, request, events)

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"])
    def export(self, request: Request, *args: Any, **kwargs: Any) -> StreamingHttpResponse:
        """The invoice's lines as CSV."""
        invoice = self.get_object()
        return csv_response(
            selectors.invoice_rows(invoice), f"invoice-{invoice.number}.csv", tenant=self.tenant
        )

    @extend_schema(responses={(200, "text/html"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"])
    def document(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        """The invoice as a print-ready HTML page (print it to PDF from any browser)."""
        invoice = self.get_object()
        html = render_to_string(
            "billing/invoice.html", selectors.invoice_document(invoice), request=None
        )
        return HttpResponse(html, content_type="text/html; charset=utf-8")


class CreditNoteViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Money given back on a finalized invoice for conversations reversed after it was issued."""

    model = CreditNote
    permission_family = "billing"
    serializer_class = CreditNoteSerializer

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.select_related("invoice")

    @extend_schema(responses=UsageEventSerializer(many=True))
    @action(detail=True, methods=["get"])
    def usage(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The reversals this credit note pays back."""
        return usage_page(self, request, selectors.credit_note_events(self.get_object()))


class AccountUpdate(serializers.Serializer[Any]):
    billing_email = serializers.EmailField(required=False, allow_blank=True)
    # The columns' ranges: PositiveIntegerField, PositiveBigIntegerField.
    usage_soft_limit = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=2**31 - 1
    )
    usage_hard_limit = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=2**31 - 1
    )
    spend_soft_limit = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=2**63 - 1
    )
    spend_hard_limit = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=2**63 - 1
    )


class PlanInput(serializers.Serializer[Any]):
    plan = serializers.CharField(help_text="A plan's code, from GET /v1/billing/plans")


class BillingView(TenantScopedMixin):
    """The tenant's plan, current period, caps and where it stands against them, and whether
    invoices are mirrored to Stripe or kept here only."""

    permission_family = "billing"

    @extend_schema(responses=OpenApiTypes.OBJECT, operation_id="billing_retrieve")
    def get(self, request: Request) -> Response:
        return Response(selectors.account_data(self.tenant, stripe_sync.enabled()))

    @extend_schema(
        request=AccountUpdate, responses=OpenApiTypes.OBJECT, operation_id="billing_update"
    )
    def patch(self, request: Request) -> Response:
        data = AccountUpdate(data=request.data)
        data.is_valid(raise_exception=True)
        services.subscription_update(
            actor=self.actor, tenant=self.tenant, changes=dict(data.validated_data)
        )
        return Response(selectors.account_data(self.tenant, stripe_sync.enabled()))


class PlanView(TenantScopedMixin):
    """Change plan from the next period on (owners only)."""

    permission_family = "billing"

    @extend_schema(request=PlanInput, responses=OpenApiTypes.OBJECT, operation_id="billing_plan")
    def put(self, request: Request) -> Response:
        data = PlanInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.plan_change(
            actor=self.actor, tenant=self.tenant, plan_code=data.validated_data["plan"]
        )
        return Response(selectors.account_data(self.tenant, stripe_sync.enabled()))


class PlanListView(TenantScopedMixin):
    """The plans on offer, with their prices."""

    permission_family = "billing"

    @extend_schema(responses=PlanSerializer(many=True), operation_id="billing_plans")
    def get(self, request: Request) -> Response:
        return Response(PlanSerializer(selectors.public_plans(), many=True).data)


class PreviewView(TenantScopedMixin):
    """The invoice the current period would get if it closed now."""

    permission_family = "billing"

    @extend_schema(responses=OpenApiTypes.OBJECT, operation_id="billing_preview")
    def get(self, request: Request) -> Response:
        return Response(selectors.preview_data(self.tenant))
