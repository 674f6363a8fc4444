"""Forms of the console's Agents pages. They shape what a person types into the values the
agents services take; the services alone decide what is valid."""

from typing import Any

from django import forms

from agents.models import Agent, AgentVersion, KnowledgeBase, Tool
from agents.versions import VOICES

FALLBACK_HELP = (
    "Where callers go when the agent cannot take the call (E.164, e.g. +15551234567); "
    "empty: they hear an apology and the call ends."
)


class AgentForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    fallback_number = forms.CharField(required=False, help_text=FALLBACK_HELP)


class AgentSettingsForm(AgentForm):
    status = forms.ChoiceField(
        choices=Agent.Status.choices,
        help_text="An archived agent answers no calls; numbers must be reassigned first.",
    )


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _typed(kind: str, text: str) -> Any:
    """A variable's value as its declared type, so the renderer's type check applies."""
    if kind == "integer":
        return int(text)
    if kind == "number":
        return float(text) if any(c in text for c in ".eE") else int(text)
    if kind == "boolean":
        lowered = text.lower()
        if lowered in ("true", "yes"):
            return True
        if lowered in ("false", "no"):
            return False
        raise ValueError(text)
    return text


def parse_prompt_values(text: str, declared: list[Any]) -> dict[str, Any]:
    """`name = value` a line, each value read as its variable's declared type."""
    types = {v.get("name"): v.get("type", "string") for v in declared if isinstance(v, dict)}
    values: dict[str, Any] = {}
    for line in _lines(text):
        name, equals, value = line.partition("=")
        name, value = name.strip(), value.strip()
        if not equals or not name:
            raise forms.ValidationError(f"Write “name = value”, not {line!r}.")
        kind = types.get(name, "string")
        try:
            values[name] = _typed(kind, value)
        except ValueError:
            raise forms.ValidationError(f"{name} must be a {kind}, not {value!r}.") from None
    return values


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def prompt_values_text(values: dict[str, Any]) -> str:
    return "\n".join(f"{name} = {_value_text(value)}" for name, value in values.items())


def parse_transfer_targets(text: str) -> list[dict[str, str]]:
    targets = []
    for line in _lines(text):
        parts = [p.strip() for p in line.split(",", 2)]
        if len(parts) < 2:
            raise forms.ValidationError(f"Write “name, destination”, not {line!r}.")
        target = {"name": parts[0], "destination": parts[1]}
        if len(parts) == 3 and parts[2]:
            target["description"] = parts[2]
        targets.append(target)
    return targets


def transfer_targets_text(targets: list[Any]) -> str:
    return "\n".join(
        ", ".join(str(t[k]) for k in ("name", "destination", "description") if t.get(k))
        for t in targets
        if isinstance(t, dict)
    )


YES, NO = ("yes", "resolved", "true"), ("no", "not resolved", "false")


def parse_outcomes(text: str) -> list[dict[str, Any]]:
    outcomes = []
    for line in _lines(text):
        parts = [p.strip() for p in line.split(",", 2)]
        resolved = parts[1].lower() if len(parts) > 1 else ""
        if resolved not in YES + NO:
            raise forms.ValidationError(
                f"Write “label, yes or no, description”, not {line!r}.", code="outcome"
            )
        outcome: dict[str, Any] = {"label": parts[0], "resolved": resolved in YES}
        if len(parts) == 3 and parts[2]:
            outcome["description"] = parts[2]
        outcomes.append(outcome)
    return outcomes


def outcomes_text(outcomes: list[Any]) -> str:
    return "\n".join(
        ", ".join(
            [str(o.get("label", "")), "yes" if o.get("resolved") else "no"]
            + ([str(o["description"])] if o.get("description") else [])
        )
        for o in outcomes
        if isinstance(o, dict)
    )


def _set_choices(form: forms.Form, name: str, choices: list[tuple[str, str]]) -> None:
    field = form.fields[name]
    assert isinstance(field, forms.ChoiceField)
    field.choices = choices


def normalised_text(text: str) -> str:
    """Browsers send CRLF line ends; prompts are stored with LF."""
    return text.replace("\r\n", "\n").strip()


class VersionForm(forms.Form):
    instructions = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12}),
        required=False,
        strip=False,
        help_text="What the agent is told before each call. Placeholders look like "
        "{{ clinic }}; give their values below. A changed text is saved as a new revision of "
        "the prompt template; published versions keep theirs.",
    )
    prompt_variables = forms.CharField(
        label="Prompt values",
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text="One a line: name = value.",
    )
    voice = forms.ChoiceField(choices=[(v, v) for v in VOICES])
    greeting = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="What the agent says first; empty: it waits for the caller.",
    )
    languages = forms.CharField(help_text="Language codes, separated by commas: en, es.")
    tools = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, required=False)
    knowledge_bases = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, required=False)
    transfer_targets = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="One a line: name, destination (E.164 or SIP URI), optional description.",
    )
    outcome_taxonomy = forms.CharField(
        label="Outcomes",
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="One a line: label, billed as resolved (yes or no), description.",
    )
    max_call_duration_seconds = forms.IntegerField(label="Longest call (seconds)")
    silence_timeout_seconds = forms.IntegerField(label="Silence timeout (seconds)")
    recording_enabled = forms.BooleanField(label="Record calls", required=False)

    def __init__(
        self,
        *args: Any,
        tools: list[Tool],
        knowledge_bases: list[KnowledgeBase],
        declared: list[Any],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        # The prompt's variables as declared now; new placeholders become text variables.
        self.declared = declared
        _set_choices(self, "tools", [(t.public_id, t.name) for t in tools])
        _set_choices(self, "knowledge_bases", [(k.public_id, k.name) for k in knowledge_bases])

    def clean_instructions(self) -> str:
        return normalised_text(self.cleaned_data["instructions"])

    def clean_prompt_variables(self) -> dict[str, Any]:
        return parse_prompt_values(self.cleaned_data["prompt_variables"], self.declared)

    def clean_languages(self) -> list[str]:
        return [code.strip() for code in self.cleaned_data["languages"].split(",") if code.strip()]

    def clean_transfer_targets(self) -> list[dict[str, str]]:
        return parse_transfer_targets(self.cleaned_data["transfer_targets"])

    def clean_outcome_taxonomy(self) -> list[dict[str, Any]]:
        return parse_outcomes(self.cleaned_data["outcome_taxonomy"])


def version_initial(
    version: AgentVersion, tools: list[str], knowledge_bases: list[str]
) -> dict[str, Any]:
    revision = version.prompt_revision
    return {
        "instructions": revision.body if revision else "",
        "prompt_variables": prompt_values_text(version.prompt_variables),
        "voice": version.voice,
        "greeting": version.greeting,
        "languages": ", ".join(version.languages),
        "tools": tools,
        "knowledge_bases": knowledge_bases,
        "transfer_targets": transfer_targets_text(version.transfer_targets),
        "outcome_taxonomy": outcomes_text(version.outcome_taxonomy),
        "max_call_duration_seconds": version.max_call_duration_seconds,
        "silence_timeout_seconds": version.silence_timeout_seconds,
        "recording_enabled": version.recording_enabled,
    }


class PreviewForm(forms.Form):
    instructions = forms.CharField(required=False, strip=False)
    prompt_variables = forms.CharField(required=False)


def version_choices(versions: list[AgentVersion]) -> list[tuple[str, str]]:
    return [(v.public_id, f"Version {v.number} ({v.status})") for v in versions]


class NewDraftForm(forms.Form):
    based_on = forms.ChoiceField(label="Start from", required=False)

    def __init__(self, *args: Any, versions: list[AgentVersion], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        copies = [(v.public_id, f"A copy of version {v.number} ({v.status})") for v in versions]
        _set_choices(self, "based_on", [("", "An empty draft"), *copies])


class RollbackForm(forms.Form):
    version = forms.ChoiceField(label="Send all calls to")

    def __init__(self, *args: Any, versions: list[AgentVersion], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        published = [v for v in versions if v.status == AgentVersion.Status.PUBLISHED]
        _set_choices(self, "version", [(v.public_id, f"Version {v.number}") for v in published])


class DiffForm(forms.Form):
    a = forms.ChoiceField(label="From")
    b = forms.ChoiceField(label="To")

    def __init__(self, *args: Any, versions: list[AgentVersion], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _set_choices(self, "a", version_choices(versions))
        _set_choices(self, "b", version_choices(versions))


def weight_field_name(version: AgentVersion) -> str:
    return f"weight_{version.public_id}"


class SplitForm(forms.Form):
    """A weight for each published version; 0 leaves it out of the split."""

    def __init__(
        self, *args: Any, versions: list[AgentVersion], weights: dict[int, int], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.versions = versions
        for version in versions:
            self.fields[weight_field_name(version)] = forms.IntegerField(
                label=f"Version {version.number}",
                min_value=0,
                max_value=100,
                initial=weights.get(version.pk, 0),
                help_text="Percent of calls; 0 takes none.",
            )

    def allocations(self) -> list[tuple[AgentVersion, int]]:
        return [
            (version, self.cleaned_data[weight_field_name(version)])
            for version in self.versions
            if self.cleaned_data[weight_field_name(version)]
        ]
