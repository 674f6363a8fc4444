import django_filters

from tenants.models import ApiKey, AuditEvent, Membership
from tenants.roles import Role


class MemberFilter(django_filters.FilterSet):
    role = django_filters.ChoiceFilter(choices=Role.choices)

    class Meta:
        model = Membership
        fields = ["role"]


class ApiKeyFilter(django_filters.FilterSet):
    revoked = django_filters.BooleanFilter(
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
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["actor", "actor_type", "action", "target", "target_type", "since", "until"]
