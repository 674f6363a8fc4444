from django.contrib import admin

from billing.models import UsageEvent
from tenants.admin import ReadOnlyAdmin


@admin.register(UsageEvent)
class UsageEventAdmin(ReadOnlyAdmin):
    """The ledger, as it is: rows are never changed; corrections are new rows."""

    list_display = ["public_id", "tenant", "kind", "quantity", "reference", "occurred_at"]
    list_filter = ["kind"]
    search_fields = ["public_id", "reference", "tenant__name"]
    list_select_related = ["tenant"]
