from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max

from agents import prompts
from agents.models import AgentVersion, PromptRevision, PromptTemplate
from agents.services import invalid, require_name
from tenants.access import Actor
from tenants.errors import Conflict, InvalidInput
from tenants.models import Tenant
from tenants.services import audit_event_record


def _checked(body: Any, variables: Any) -> None:
    if not isinstance(body, str):
        raise InvalidInput.field("body", "The template body is text.")
    try:
        prompts.check_template(body, variables)
    except prompts.TemplateProblems as exc:
        raise invalid(exc.problems, "The template has problems") from None


def prompt_template_create(
    *, tenant: Tenant, actor: Actor, name: str, description: str = "", body: str, variables: Any
) -> tuple[PromptTemplate, PromptRevision]:
    """A template and its first revision."""
    actor.require("agents:write")
    name = require_name(name)
    _checked(body, variables)
    try:
        with transaction.atomic():
            template = PromptTemplate.objects.create(
                tenant=tenant, name=name, description=description
            )
            revision = PromptRevision.objects.create(
                tenant=tenant, template=template, number=1, body=body, variables=variables
            )
            audit_event_record(
                actor=actor,
                action="prompt_template.create",
                target=template,
                changes={"name": [None, name]},
            )
    except IntegrityError:
        raise InvalidInput.field("name", f"A template named {name!r} exists.") from None
    return template, revision


def prompt_template_update(
    *, template: PromptTemplate, actor: Actor, **fields: Any
) -> PromptTemplate:
    actor.require("agents:write")
    if "name" in fields:
        fields["name"] = require_name(fields["name"])
    changes = {k: [getattr(template, k), v] for k, v in fields.items() if getattr(template, k) != v}
    if not changes:
        return template
    try:
        with transaction.atomic():
            for key, (_, value) in changes.items():
                setattr(template, key, value)
            template.save(update_fields=list(changes))
            audit_event_record(
                actor=actor, action="prompt_template.update", target=template, changes=changes
            )
    except IntegrityError:
        raise InvalidInput.field("name", f"A template named {fields['name']!r} exists.") from None
    return template


def prompt_template_delete(*, template: PromptTemplate, actor: Actor) -> None:
    actor.require("agents:write")
    with transaction.atomic():
        pinned = list(
            AgentVersion.objects.for_tenant(template.tenant)
            .filter(prompt_revision__template=template)
            .values_list("public_id", flat=True)
        )
        if pinned:
            raise Conflict(f"Versions use this template: {', '.join(pinned)}.", code="in_use")
        audit_event_record(actor=actor, action="prompt_template.delete", target=template)
        template.delete()


def prompt_revision_create(
    *, template: PromptTemplate, actor: Actor, body: str, variables: Any
) -> PromptRevision:
    """A new numbered revision; earlier revisions, and the versions pinning them, are untouched."""
    actor.require("agents:write")
    _checked(body, variables)
    with transaction.atomic():
        locked = (
            PromptTemplate.objects.for_tenant(template.tenant)
            .select_for_update()
            .get(pk=template.pk)
        )
        latest = (
            PromptRevision.objects.for_tenant(template.tenant)
            .filter(template=locked)
            .aggregate(n=Max("number"))["n"]
            or 0
        )
        revision = PromptRevision.objects.create(
            tenant=template.tenant,
            template=locked,
            number=latest + 1,
            body=body,
            variables=variables,
        )
        audit_event_record(
            actor=actor,
            action="prompt_revision.create",
            target=revision,
            changes={"template": [None, template.public_id], "number": [None, revision.number]},
        )
    return revision


def prompt_render(revision: PromptRevision, values: Any) -> str:
    """The revision's text with `values`; every missing or ill-typed variable is named."""
    try:
        return prompts.render(revision.body, revision.variables, values)
    except prompts.TemplateProblems as exc:
        raise invalid(
            exc.problems, "The template cannot be rendered", code="render_failed"
        ) from None
