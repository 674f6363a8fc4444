"""Billing's forms: the plan to move to, the usage and spend caps, and the usage list's filters."""

from decimal import Decimal
from typing import Any

from django import forms

from billing.models import Meter, Plan
from billing.money import exponent
from billing.services import LIMIT_FIELDS


class PlanChangeForm(forms.Form):
    plan = forms.ChoiceField(
        label="Plan from the next period",
        help_text="A new plan takes effect when the current billing period ends; this period "
        "is billed on the plan you have now.",
    )

    def __init__(self, *args: Any, plans: list[Plan], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["plan"].choices = [(plan.code, f"{plan.name} ({plan.code})") for plan in plans]  # type: ignore[attr-defined]


class CapsForm(forms.Form):
    """Caps per billing period. Spend is typed in the currency (12.50), stored in minor units."""

    usage_soft_limit = forms.IntegerField(
        label="Usage soft limit",
        required=False,
        min_value=0,
        help_text="Billable units in a period; when reached, owners and finance get an email "
        "and calls go on.",
    )
    usage_hard_limit = forms.IntegerField(
        label="Usage hard limit",
        required=False,
        min_value=0,
        help_text="When reached, new calls are refused until the next period.",
    )
    spend_soft_limit = forms.DecimalField(
        label="Spend soft limit",
        required=False,
        min_value=Decimal(0),
        help_text="The period's bill so far; when reached, owners and finance get an email.",
    )
    spend_hard_limit = forms.DecimalField(
        label="Spend hard limit",
        required=False,
        min_value=Decimal(0),
        help_text="When the period's bill reaches it, new calls are refused until the next period.",
    )
    billing_email = forms.EmailField(
        label="Billing email",
        required=False,
        help_text="Also receives the soft-limit alerts, besides owners and finance members.",
    )

    def __init__(self, *args: Any, currency: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.places = exponent(currency)
        for name in ("spend_soft_limit", "spend_hard_limit"):
            # Rebuilt rather than adjusted: a field's validators are made when it is created.
            declared = self.fields[name]
            self.fields[name] = forms.DecimalField(
                label=f"{declared.label} ({currency.upper()})",
                required=False,
                min_value=Decimal(0),
                decimal_places=self.places,
                help_text=declared.help_text,
            )

    @classmethod
    def initial_for(
        cls, limits: dict[str, int | None], billing_email: str, currency: str
    ) -> dict[str, Any]:
        """The form's values for the caps as stored (spend in minor units)."""
        places = exponent(currency)
        initial: dict[str, Any] = {"billing_email": billing_email}
        for name in LIMIT_FIELDS:
            value = limits.get(name)
            if name.startswith("spend") and value is not None:
                initial[name] = Decimal(value).scaleb(-places)
            else:
                initial[name] = value
        return initial

    def changes(self) -> dict[str, Any]:
        """billing.services.subscription_update's changes: spend in minor units, None: no cap."""
        changes: dict[str, Any] = {"billing_email": self.cleaned_data["billing_email"]}
        for name in LIMIT_FIELDS:
            value = self.cleaned_data[name]
            if name.startswith("spend") and value is not None:
                value = int(value.scaleb(self.places))
            changes[name] = value
        return changes


class UsageFilterForm(forms.Form):
    meter = forms.ChoiceField(
        label="Meter", required=False, choices=[("", "All meters"), *Meter.choices]
    )
    call = forms.CharField(label="Call", required=False, max_length=64, help_text="call_…")
