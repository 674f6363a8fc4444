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


def prompt_revision_for(
    *, tenant: Tenant, actor: Actor, template_name: str, body: str, variables: Any
) -> PromptRevision:
    """The revision with this exact text: the named template's matching revision when one exists,
    else a new revision of that template, or a new template when none has this name."""
    template = PromptTemplate.objects.for_tenant(tenant).filter(name=template_name).first()
    if template is None:
        return prompt_template_create(
            tenant=tenant, actor=actor, name=template_name, body=body, variables=variables
        )[1]
    for revision in (
        PromptRevision.objects.for_tenant(tenant).filter(template=template).order_by("number")
    ):
        if revision.body == body and revision.variables == variables:
            return revision
    return prompt_revision_create(template=template, actor=actor, body=body, variables=variables)


def declarations_with_new_placeholders(body: str, declared: list[dict[str, Any]]) -> list[Any]:
    """`declared`, plus a text variable (without a default) for each placeholder of `body` not
    declared yet: typing {{ hours }} into the instructions asks the version for a value."""
    names = {item.get("name") for item in declared if isinstance(item, dict)}
    added = [{"name": n, "type": "string"} for n in prompts.placeholders(body) if n not in names]
    return [*declared, *added]


def prompt_text_render(body: Any, variables: Any, values: Any) -> str:
    """Unsaved text rendered exactly as a revision holding it would be (editors' previews);
    every problem with the text or the values is named."""
    _checked(body, variables)
    return prompt_render(PromptRevision(body=body, variables=variables), values)
