"""Forms of the Settings pages: tenant, API keys, webhook endpoints, privacy, audit filters."""

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django import forms

from tenants.models import Tenant
from tenants.roles import MATRIX
from tenants.services import RETENTION_DAYS_MAX, RETENTION_DAYS_MIN
from tenants.webhooks import EVENT_TYPES


class TenantForm(forms.Form):
    name = forms.CharField(max_length=Tenant._meta.get_field("name").max_length)


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="Say where the key is used, e.g. “CI deploys”."
    )
    scopes = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        help_text="A write scope includes reading the same things.",
    )
    expires_at = forms.DateField(
        required=False,
        label="Expires after",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The key stops working at the end of this day (UTC). Empty: until revoked.",
    )

    def __init__(self, *args: Any, grantable: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only the scopes the actor may grant are offered (the service refuses any other).
        field = self.fields["scopes"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(scope, f"{scope} — {MATRIX.descriptions[scope]}") for scope in grantable]

    def expiry(self) -> datetime | None:
        day: date | None = self.cleaned_data.get("expires_at")
        return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC) if day else None


class WebhookEndpointForm(forms.Form):
    url = forms.CharField(
        max_length=2000,
        label="URL",
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/webhooks/switchboard"}),
        help_text="An https address on the public internet.",
    )
    description = forms.CharField(max_length=200, required=False)
    event_types = forms.MultipleChoiceField(
        choices=[(event, event) for event in EVENT_TYPES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label="Event types",
        help_text="None ticked: every event type, including ones added later.",
    )


def _days(label: str, help_text: str) -> forms.IntegerField:
    # The service checks the range too; here it only shapes the input.
    return forms.IntegerField(
        label=label,
        help_text=help_text,
        widget=forms.NumberInput(attrs={"min": RETENTION_DAYS_MIN, "max": RETENTION_DAYS_MAX}),
    )


class RetentionForm(forms.Form):
    recording_retention_days = _days(
        "Recordings (days)", "Recordings are deleted, files included, this many days after a call."
    )
    transcript_retention_days = _days(
        "Transcripts (days)",
        "Transcript text, tool arguments and results, keypad digits, summaries, extracted "
        "fields and the outcome's quotes are removed this many days after a call. The call, "
        "its outcome and the bill stay.",
    )
    webhook_body_retention_days = _days(
        "Webhook bodies (days)",
        "The bodies of sent webhook deliveries and stored API responses are removed this many "
        "days after they were made; the delivery log stays.",
    )


class ErasureForm(forms.Form):
    phone_number = forms.CharField(
        max_length=32,
        label="Phone number",
        widget=forms.TextInput(attrs={"placeholder": "+14155550123", "autocomplete": "off"}),
        help_text="In E.164 form: + and the country code. Every call it made or took is erased.",
    )


class AuditFilterForm(forms.Form):
    """The audit log's filters; the choices are the actions and actors the log holds."""

    action = forms.ChoiceField(required=False)
    actor = forms.ChoiceField(required=False)

    def __init__(
        self, *args: Any, actions: list[str], actors: list[tuple[str, str]], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        action_field = self.fields["action"]
        actor_field = self.fields["actor"]
        assert isinstance(action_field, forms.ChoiceField)
        assert isinstance(actor_field, forms.ChoiceField)
        action_field.choices = [("", "Any action"), *[(a, a) for a in actions]]
        actor_field.choices = [("", "Anyone"), *actors]
