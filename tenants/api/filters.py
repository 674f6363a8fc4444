"""The API's filters. Typed ones refuse a value they cannot read (400) rather than silently
leaving the filter out; an empty value means the filter was not given, as a form sends it."""

from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField

from tenants.models import ApiKey, AuditEvent, Membership
from tenants.roles import Role

_NOT_GIVEN = (None, "", "unknown")  # "unknown": the "any" choice of a form's yes/no select


class _BooleanSelect(forms.NullBooleanSelect):
    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        # As given: the select would read anything it does not know as "any".
        return data.get(name)


class StrictBooleanField(forms.NullBooleanField):
    widget = _BooleanSelect

    def to_python(self, value: Any) -> bool | None:  # type: ignore[override]  # stubs say bool
        if value in (True, "true", "True", "1"):
            return True
        if value in (False, "false", "False", "0"):
            return False
        if value in _NOT_GIVEN:
            return None
        raise ValidationError("Give true or false.", code="invalid")


class UtcIsoDateTimeField(IsoDateTimeField):
    def to_python(self, value: Any) -> datetime | None:
        moment: datetime | None = super().to_python(value)
        if moment is None:
            return None
        # PostgreSQL refuses offsets beyond ±15:59 that ISO 8601 allows: compare in UTC.
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValidationError("The date and time is out of range.", code="invalid") from None


class BooleanFilter(django_filters.BooleanFilter):
    """true or false (1 or 0)."""

    field_class = StrictBooleanField


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 date and time, with any offset."""

    field_class = UtcIsoDateTimeField


class MemberFilter(django_filters.FilterSet):
    role = django_filters.ChoiceFilter(choices=Role.choices)

    class Meta:
        model = Membership
        fields = ["role"]


class ApiKeyFilter(django_filters.FilterSet):
    revoked = BooleanFilter(
        field_name="revoked_at", lookup_expr="isnull", exclude=True, label="Only revoked keys"
    )

    class Meta:
        model = ApiKey
        fields = ["revoked"]


class AuditEventFilter(django_filters.FilterSet):
    actor = django_filters.CharFilter(field_name="actor_id", label="Actor id (usr_… or key_…)")
    actor_type = django_filters.ChoiceFilter(choices=AuditEvent.ActorType.choices)
    action = django_filters.CharFilter(label="Action, e.g. api_key.create")
    target = django_filters.CharFilter(field_name="target_id", label="Target id")
    target_type = django_filters.CharFilter()
    since = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["actor", "actor_type", "action", "target", "target_type", "since", "until"]
