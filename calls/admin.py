from django.contrib import admin

from calls.models import Call, CallEvent, Erasure, Outcome
from tenants.admin import ReadOnlyAdmin


class CallEventInline(admin.TabularInline):
    model = CallEvent
    fields = ("sequence", "offset_ms", "kind", "payload")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["sequence"]

    def has_add_permission(self, request: object, obj: object = None) -> bool:
        return False


class OutcomeInline(admin.StackedInline):
    model = Outcome
    fields = (
        "label",
        "resolved",
        "confidence",
        "source",
        "rule",
        "model",
        "decided_by",
        "decided_at",
        "rationale",
        "evidence",
        "note",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(Call)
class CallAdmin(ReadOnlyAdmin):
    list_display = [
        "public_id",
        "tenant",
        "caller",
        "callee",
        "agent",
        "status",
        "end_reason",
        "started_at",
        "duration_seconds",
        "sandbox",
    ]
    list_filter = ["status", "end_reason", "carrier", "sandbox"]
    search_fields = ["public_id", "caller", "callee", "carrier_call_id", "tenant__name"]
    list_select_related = ["tenant", "agent"]
    inlines = [OutcomeInline, CallEventInline]


@admin.register(Outcome)
class OutcomeAdmin(ReadOnlyAdmin):
    list_display = ["call", "tenant", "label", "resolved", "source", "confidence", "decided_at"]
    list_filter = ["label", "resolved", "source"]
    search_fields = ["call__public_id", "tenant__name"]
    list_select_related = ["tenant", "call"]


@admin.register(CallEvent)
class CallEventAdmin(ReadOnlyAdmin):
    list_display = ["call", "sequence", "kind", "offset_ms", "tenant"]
    list_filter = ["kind"]
    search_fields = ["call__public_id"]
    list_select_related = ["tenant", "call"]


@admin.register(Erasure)
class ErasureAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "tenant", "requested_by_label", "counts", "created_at"]
    search_fields = ["public_id", "tenant__name"]
    list_select_related = ["tenant"]
