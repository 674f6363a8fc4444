"""Forms of the Tools pages: tools by kind, integrations by kind, and the "Test this tool" form.

The forms only turn what the page sent into the shapes the services take (JSON parsed, empty
optional fields left out); every rule about what a tool or an integration may hold is checked by
agents.services.tools, whose errors are placed next to the fields they are about.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django import forms

from agents import http_requests
from agents.connectors import CONNECTORS
from agents.integrations import IntegrationKind
from agents.models import AgentVersion, Integration, Tool
from console.context import service_errors_to_form
from tenants.errors import InvalidInput, ServiceError
from tenants.models import Tenant


class JSONText(forms.JSONField):
    """JSON in a textarea, shown indented; an empty optional field is None."""

    widget = forms.Textarea

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        if value is None or value == "":
            return ""
        return json.dumps(value, indent=2, ensure_ascii=False)


def place_service_errors(form: forms.Form, error: ServiceError, renames: Mapping[str, str]) -> None:
    """Like service_errors_to_form, after renaming the service's field paths (config.url) to the
    form's fields (url) where the form has them."""
    if isinstance(error, InvalidInput) and error.errors:
        errors: dict[str, list[str]] = {}
        for field, messages in error.errors.items():
            target = renames.get(field, field)
            errors.setdefault(target if target in form.fields else field, []).extend(messages)
        error = InvalidInput(error.detail, errors=errors, code=error.code)
    service_errors_to_form(form, error)


# --- Tools ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolKind:
    kind: str
    label: str
    description: str


def tool_kinds() -> list[ToolKind]:
    connectors = ", ".join(c.label for c in CONNECTORS.values())
    return [
        ToolKind(
            Tool.Kind.HTTP,
            "HTTP request",
            "Call your own API: a URL whose {placeholders} are filled from the model's arguments.",
        ),
        ToolKind(
            Tool.Kind.CONNECTOR,
            "Connector",
            f"A ready-made operation of {connectors}, with an integration's credentials.",
        ),
        ToolKind(
            Tool.Kind.SEARCH_KNOWLEDGE,
            "Search knowledge",
            "Look passages up in the knowledge bases of the agent's version.",
        ),
        ToolKind(
            Tool.Kind.TRANSFER_CALL,
            "Transfer call",
            "Hand the caller to a person: one of the version's transfer targets.",
        ),
        ToolKind(Tool.Kind.END_CALL, "End call", "Hang up when the conversation is over."),
    ]


def connector_operations() -> list[tuple[str, str]]:
    return [
        (f"{connector.kind}/{operation.name}", f"{connector.label}: {operation.description}")
        for connector in CONNECTORS.values()
        for operation in connector.operations.values()
    ]


class IntegrationChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} ({obj.kind})"


HTTP_FIELDS = (
    "method",
    "url",
    "parameters",
    "headers",
    "query",
    "body",
    "response_mapping",
    "timeout_seconds",
    "integration",
)
FIELDS_BY_KIND: dict[str, tuple[str, ...]] = {
    Tool.Kind.HTTP: HTTP_FIELDS,
    Tool.Kind.CONNECTOR: ("operation", "integration"),
    Tool.Kind.SEARCH_KNOWLEDGE: ("limit",),
    Tool.Kind.TRANSFER_CALL: (),
    Tool.Kind.END_CALL: (),
}
# Where the tool services' field paths land in the form.
TOOL_ERROR_FIELDS = {
    **{f"config.{key}": key for key in HTTP_FIELDS},
    "config.connector": "operation",
    "config.operation": "operation",
    "config.limit": "limit",
    # "{x} is not an argument in the parameters schema": fixed in the schema or the templates.
    "config": "parameters",
}
EXAMPLE_SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "string", "description": "The order number"}},
    "required": ["order_id"],
}


class ToolForm(forms.Form):
    name = forms.CharField(
        max_length=64,
        help_text="The function name the model sees: letters, digits, _ or -, e.g. order_status.",
    )
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Tell the model when to use this tool and what it gives back.",
    )
    method = forms.ChoiceField(choices=[(m, m) for m in http_requests.METHODS], initial="GET")
    url = forms.CharField(
        label="URL",
        max_length=2000,
        help_text="e.g. https://api.example.com/orders/{order_id}. Arguments in braces fill the "
        "path and query; the host is fixed.",
    )
    parameters = JSONText(
        label="Parameters (JSON schema)",
        initial=EXAMPLE_SCHEMA,
        help_text='The arguments the model passes: a JSON schema with "type": "object".',
    )
    headers = JSONText(
        required=False,
        help_text='A JSON object of text values, e.g. {"Accept": "application/json"}. '
        "Credentials belong in an integration.",
    )
    query = JSONText(
        label="Query parameters",
        required=False,
        help_text='A JSON object of text values, e.g. {"lang": "en", "q": "{order_id}"}.',
    )
    body = JSONText(
        required=False,
        help_text='JSON sent as the request body, e.g. {"id": "{order_id}"}. A value that is only '
        '"{name}" keeps the argument\'s type.',
    )
    response_mapping = JSONText(
        required=False,
        help_text='What the model sees of the JSON answer, e.g. {"status": "order.status"}. '
        "Empty: the whole answer.",
    )
    timeout_seconds = forms.FloatField(
        label="Timeout (seconds)",
        required=False,
        help_text="Between 0.5 and 30; 10 when empty.",
    )
    operation = forms.ChoiceField(choices=connector_operations)
    limit = forms.IntegerField(
        label="Passages",
        required=False,
        help_text="How many passages a search returns, 1 to 10; 3 when empty.",
    )
    integration = IntegrationChoice(
        queryset=Integration.objects.none(),
        to_field_name="public_id",
        required=False,
        empty_label="None",
        help_text="The credentials sent with each request.",
    )

    def __init__(self, *args: Any, kind: str, tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        keep = {"name", "description", *FIELDS_BY_KIND[kind]}
        for name in list(self.fields):
            if name not in keep:
                del self.fields[name]
        if "integration" in self.fields:
            field = self.fields["integration"]
            assert isinstance(field, IntegrationChoice)
            field.queryset = Integration.objects.for_tenant(tenant).order_by("name")
            if kind == Tool.Kind.CONNECTOR:
                field.required = True
                field.help_text = "An integration of the connector's kind, with its credentials."

    @staticmethod
    def initial_for(tool: Tool) -> dict[str, Any]:
        config = tool.config
        initial: dict[str, Any] = {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
            "integration": tool.integration,
            "limit": config.get("limit"),
            "operation": f"{config.get('connector')}/{config.get('operation')}",
        }
        for key in ("method", "url", "headers", "query", "body", "response_mapping"):
            initial[key] = config.get(key)
        initial["timeout_seconds"] = config.get("timeout_seconds")
        return initial

    def service_fields(self) -> dict[str, Any]:
        """name, description, parameters, config and integration, as tool_create takes them."""
        data = self.cleaned_data
        fields: dict[str, Any] = {"name": data["name"], "description": data["description"]}
        config: dict[str, Any] = {}
        if self.kind == Tool.Kind.HTTP:
            config = {"method": data["method"], "url": data["url"]}
            for key in ("headers", "query", "body", "response_mapping", "timeout_seconds"):
                if data.get(key) is not None:
                    config[key] = data[key]
            fields["parameters"] = data["parameters"]
            fields["integration"] = data["integration"]
        elif self.kind == Tool.Kind.CONNECTOR:
            connector, operation = data["operation"].split("/", 1)
            config = {"connector": connector, "operation": operation}
            fields["integration"] = data["integration"]
        elif self.kind == Tool.Kind.SEARCH_KNOWLEDGE and data.get("limit") is not None:
            config = {"limit": data["limit"]}
        fields["config"] = config
        return fields


def example_arguments(parameters: dict[str, Any]) -> dict[str, Any]:
    """Arguments to start a test from: each required argument with an empty value of its type."""
    blanks = {"string": "", "integer": 0, "number": 0, "boolean": False, "array": [], "object": {}}
    properties = parameters.get("properties", {})
    return {
        name: blanks.get(properties.get(name, {}).get("type", "string"), "")
        for name in parameters.get("required", [])
    }


class VersionChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.agent.name} · version {obj.number} ({obj.status})"


class ToolTestForm(forms.Form):
    arguments = JSONText(
        label="Sample arguments (JSON)",
        required=False,
        help_text="A JSON object, as the model would pass it.",
    )
    version = VersionChoice(
        queryset=AgentVersion.objects.none(),
        to_field_name="public_id",
        required=False,
        empty_label="None",
    )

    def __init__(self, *args: Any, tool: Tool, tenant: Tenant, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {"arguments": example_arguments(tool.parameters)})
        super().__init__(*args, **kwargs)
        version = self.fields["version"]
        assert isinstance(version, VersionChoice)
        if tool.kind == Tool.Kind.TRANSFER_CALL:
            version.help_text = "Transfer targets belong to a version: choose the one to try."
        elif tool.kind == Tool.Kind.SEARCH_KNOWLEDGE:
            version.help_text = "Search that version's knowledge bases; none: every one of yours."
        else:
            del self.fields["version"]
            return
        version.queryset = (
            AgentVersion.objects.for_tenant(tenant)
            .select_related("agent")
            .order_by("agent__name", "number")
        )

    def clean_arguments(self) -> dict[str, Any]:
        value = self.cleaned_data.get("arguments")
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError('A JSON object, e.g. {"order_id": "A17"}.')
        return value


# --- Integrations -----------------------------------------------------------------------------


class IntegrationForm(forms.Form):
    """The name, then the kind's settings and secrets. Secrets are never rendered back: an empty
    secret field keeps the stored value."""

    name = forms.CharField(max_length=100, help_text="How tools refer to these credentials.")

    def __init__(
        self,
        *args: Any,
        spec: IntegrationKind,
        integration: Integration | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.spec = spec
        self.renames: dict[str, str] = {}
        for item in spec.config_fields:
            name = f"config_{item.name}"
            self.fields[name] = forms.CharField(
                label=item.label, required=item.required, help_text=item.help
            )
            self.renames[f"config.{item.name}"] = name
        for item in spec.secret_fields:
            name = f"secret_{item.name}"
            is_set = integration is not None and bool(integration.secrets.get(item.name))
            state = "Set: leave empty to keep it." if is_set else "Not set."
            self.fields[name] = forms.CharField(
                label=item.label,
                required=item.required and integration is None,
                help_text=f"{item.help} {state}".strip() if integration else item.help,
                widget=forms.PasswordInput(
                    render_value=False, attrs={"autocomplete": "new-password"}
                ),
            )
            self.renames[f"secrets.{item.name}"] = name

    @staticmethod
    def initial_for(integration: Integration) -> dict[str, Any]:
        initial = {f"config_{key}": value for key, value in integration.config.items()}
        return {"name": integration.name, **initial}

    def config(self, *, keep_empty: bool) -> dict[str, str]:
        """The settings; on an edit, emptied ones are sent too, so they can be cleared."""
        values = {
            f.name: self.cleaned_data.get(f"config_{f.name}", "") for f in self.spec.config_fields
        }
        return {k: v for k, v in values.items() if v or keep_empty}

    def secrets(self) -> dict[str, str]:
        """Only the secrets typed in: the others keep their stored values."""
        values = {
            f.name: self.cleaned_data.get(f"secret_{f.name}", "") for f in self.spec.secret_fields
        }
        return {k: v for k, v in values.items() if v}

    def place_errors(self, error: ServiceError) -> None:
        place_service_errors(self, error, self.renames)
