"""Forms of the console's Calls pages: the calls list's filters, turned into the query of the
API's filterset (calls.selectors.CallFilter), and the outcome a person sets by hand."""

from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from agents.models import Agent, AgentVersion, PhoneNumber
from agents.models.agents import default_outcome_taxonomy
from calls.models import Call
from tenants.models import Tenant

RESOLVED_CHOICES = [("", "Either"), ("true", "Resolved"), ("false", "Not resolved")]


class AgentChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.name)


def outcome_labels(tenant: Tenant) -> list[str]:
    """Every label the tenant's versions can tag a call with, the default taxonomy's first."""
    labels = [str(item["label"]) for item in default_outcome_taxonomy()]
    taxonomies = AgentVersion.objects.for_tenant(tenant).values_list("outcome_taxonomy", flat=True)
    for taxonomy in taxonomies:
        for item in taxonomy or []:
            if isinstance(item, dict) and item.get("label") and item["label"] not in labels:
                labels.append(str(item["label"]))
    return labels


class CallFilterForm(forms.Form):
    agent = AgentChoice(
        queryset=Agent.objects.none(),
        to_field_name="public_id",
        required=False,
        empty_label="Any agent",
    )
    number = forms.ChoiceField(required=False, label="Number called")
    caller = forms.CharField(
        required=False,
        max_length=32,
        label="Caller",
        widget=forms.TextInput(attrs={"placeholder": "Number or part of it"}),
    )
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Call.Status.choices])
    outcome = forms.ChoiceField(required=False)
    resolved = forms.ChoiceField(required=False, choices=RESOLVED_CHOICES)
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, tenant: Tenant, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        agent = self.fields["agent"]
        number = self.fields["number"]
        outcome = self.fields["outcome"]
        assert isinstance(agent, forms.ModelChoiceField)
        assert isinstance(number, forms.ChoiceField)
        assert isinstance(outcome, forms.ChoiceField)
        agent.queryset = Agent.objects.for_tenant(tenant).order_by("name")
        numbers = (
            PhoneNumber.objects.for_tenant(tenant).order_by("e164").values_list("e164", flat=True)
        )
        number.choices = [("", "Any number"), *((e164, e164) for e164 in dict.fromkeys(numbers))]
        outcome.choices = [
            ("", "Any outcome"),
            *((label, label) for label in outcome_labels(tenant)),
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and until < since:
            self.add_error("until", "The end date is before the start date.")
        return cleaned

    def query(self) -> dict[str, str]:
        """The valid filters as CallFilter's query parameters (a field in error is left out)."""
        data = getattr(self, "cleaned_data", {})
        query: dict[str, str] = {}
        if data.get("agent"):
            query["agent"] = data["agent"].public_id
        for name in ("number", "caller", "status", "outcome", "resolved"):
            if data.get(name):
                query[name] = str(data[name]).strip()
        if data.get("since"):
            query["since"] = _midnight(data["since"]).isoformat()
        if data.get("until"):  # the whole of the last day
            query["until"] = _midnight(data["until"] + timedelta(days=1)).isoformat()
        return query


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


class OutcomeForm(forms.Form):
    label = forms.ChoiceField(label="Outcome")
    rationale = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Why",
        help_text="Kept with the outcome and in the audit log.",
    )

    def __init__(self, taxonomy: list[dict[str, Any]], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["label"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [
            (
                str(item["label"]),
                f"{item['label']} ({'resolved' if item.get('resolved') else 'not resolved'})",
            )
            for item in taxonomy
        ]
