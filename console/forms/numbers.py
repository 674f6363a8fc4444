"""Forms of the console's Numbers pages. They shape what a person types into the values the
numbers services take; the services alone decide what is valid."""

from typing import Any

from django import forms
from django.db.models import QuerySet

from agents.models import Agent, CarrierAccount
from tenants.errors import InvalidInput
from tenants.models import Tenant
from workers.management.commands.simulate_call import DEMO_SCRIPT

# Where a service's complaint about a credential belongs on the carrier account form.
CREDENTIAL_FIELDS = {
    "config.account_sid": "account_sid",
    "secrets.auth_token": "auth_token",
    "secrets.api_key": "api_key",
    "secrets.webhook_secret": "webhook_secret",
}
MAX_TEST_CALL_LINES = 10


class CarrierAccountChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} ({obj.get_kind_display()})"


class AgentChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.name)


def carrier_accounts(tenant: Tenant, *, sellers_only: bool = False) -> QuerySet[CarrierAccount]:
    accounts = CarrierAccount.objects.for_tenant(tenant).order_by("name")
    if sellers_only:  # OpenAI SIP numbers come from the SIP trunk provider: imported, not bought
        accounts = accounts.exclude(kind=CarrierAccount.Kind.OPENAI_SIP)
    return accounts


def active_agents(tenant: Tenant) -> QuerySet[Agent]:
    return Agent.objects.for_tenant(tenant).filter(status=Agent.Status.ACTIVE).order_by("name")


class SearchForm(forms.Form):
    carrier_account = CarrierAccountChoice(
        queryset=CarrierAccount.objects.none(), to_field_name="public_id", empty_label=None
    )
    area_code = forms.CharField(max_length=3, required=False, help_text="Three digits, e.g. 415.")
    contains = forms.CharField(
        max_length=10, required=False, help_text="Digits the number contains, e.g. 0123."
    )

    def __init__(self, tenant: Tenant, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["carrier_account"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = carrier_accounts(tenant, sellers_only=True)


class PurchaseForm(forms.Form):
    carrier_account = CarrierAccountChoice(
        queryset=CarrierAccount.objects.none(), to_field_name="public_id"
    )
    phone_number = forms.CharField(max_length=16)

    def __init__(self, tenant: Tenant, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["carrier_account"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = carrier_accounts(tenant, sellers_only=True)


class ImportForm(forms.Form):
    carrier_account = CarrierAccountChoice(
        queryset=CarrierAccount.objects.none(), to_field_name="public_id", empty_label=None
    )
    phone_number = forms.CharField(
        max_length=16,
        help_text="A number this carrier account already has, in E.164 form: +14155550123.",
    )
    agent = AgentChoice(
        queryset=Agent.objects.none(),
        to_field_name="public_id",
        required=False,
        empty_label="No agent yet",
        label="Agent answering it",
    )

    def __init__(self, tenant: Tenant, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        account = self.fields["carrier_account"]
        agent = self.fields["agent"]
        assert isinstance(account, forms.ModelChoiceField)
        assert isinstance(agent, forms.ModelChoiceField)
        account.queryset = carrier_accounts(tenant)
        agent.queryset = active_agents(tenant)


class AssignForm(forms.Form):
    agent = AgentChoice(
        queryset=Agent.objects.none(),
        to_field_name="public_id",
        required=False,
        empty_label="No agent (calls are not answered)",
        label="Agent answering this number",
    )
    friendly_name = forms.CharField(max_length=100, required=False, label="Name")

    def __init__(self, tenant: Tenant, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["agent"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = active_agents(tenant)


class CarrierAccountForm(forms.Form):
    kind = forms.ChoiceField(
        choices=CarrierAccount.Kind.choices, initial=CarrierAccount.Kind.TWILIO
    )
    name = forms.CharField(max_length=100)
    account_sid = forms.CharField(
        required=False,
        label="Twilio Account SID",
        help_text="Twilio only: AC followed by 32 hex digits, from the Twilio console.",
    )
    # Secrets are write-only: a form shown again after an error never carries them back.
    auth_token = forms.CharField(
        required=False,
        label="Twilio Auth Token",
        widget=forms.PasswordInput(render_value=False),
        help_text="Twilio only. Stored encrypted and never shown again.",
    )
    api_key = forms.CharField(
        required=False,
        label="OpenAI API key",
        widget=forms.PasswordInput(render_value=False),
        help_text="OpenAI SIP only: the project's key, sk-…",
    )
    webhook_secret = forms.CharField(
        required=False,
        label="OpenAI webhook secret",
        widget=forms.PasswordInput(render_value=False),
        help_text="OpenAI SIP only: the project webhook's signing secret, whsec_…",
    )

    def credentials(self) -> tuple[dict[str, str], dict[str, str]]:
        """The account's config and secrets, as the service takes them for the chosen kind."""
        data = self.cleaned_data
        if data["kind"] == CarrierAccount.Kind.TWILIO:
            return {"account_sid": data["account_sid"].strip()}, {
                "auth_token": data["auth_token"].strip()
            }
        if data["kind"] == CarrierAccount.Kind.OPENAI_SIP:
            return {}, {
                "api_key": data["api_key"].strip(),
                "webhook_secret": data["webhook_secret"].strip(),
            }
        return {}, {}


def credential_errors(error: InvalidInput) -> InvalidInput:
    """The service names credentials `config.account_sid`, `secrets.auth_token`…; the form has
    one field for each."""
    errors = {
        CREDENTIAL_FIELDS.get(field, field): messages for field, messages in error.errors.items()
    }
    return InvalidInput(error.detail, errors=errors, code=error.code)


class CallScriptForm(forms.Form):
    script = forms.CharField(
        label="What the caller says",
        widget=forms.Textarea(attrs={"rows": 4}),
        initial="\n".join(DEMO_SCRIPT),
        help_text=(
            "One line a turn: the simulated caller waits for the agent to answer, says each "
            "line in turn, then waits for the agent to hang up."
        ),
    )

    def clean_script(self) -> list[str]:
        lines = [line.strip() for line in self.cleaned_data["script"].splitlines() if line.strip()]
        if not lines:
            raise forms.ValidationError("Write at least one thing the caller says.")
        if len(lines) > MAX_TEST_CALL_LINES:
            raise forms.ValidationError(f"At most {MAX_TEST_CALL_LINES} lines.")
        if any(len(line) > 500 for line in lines):
            raise forms.ValidationError("Keep each line under 500 characters.")
        return lines
