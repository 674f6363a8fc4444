from typing import Any

from django.contrib.postgres.search import SearchVector
from django.db import IntegrityError, connection, transaction

from agents import documents
from agents.models import Chunk, Document, KnowledgeBase, VersionKnowledgeBase
from agents.services import require_name
from tenants.access import Actor
from tenants.errors import Conflict, InvalidInput
from tenants.models import Tenant
from tenants.services import audit_event_record


def _language(value: Any) -> str:
    if value not in KnowledgeBase.Language.values:
        raise InvalidInput.field(
            "language", f"Language is one of {', '.join(KnowledgeBase.Language.values)}."
        )
    return str(value)


def knowledge_base_create(
    *, tenant: Tenant, actor: Actor, name: str, description: str = "", language: str = "english"
) -> KnowledgeBase:
    actor.require("knowledge:write")
    name = require_name(name)
    try:
        with transaction.atomic():
            kb = KnowledgeBase.objects.create(
                tenant=tenant, name=name, description=description, language=_language(language)
            )
            audit_event_record(
                actor=actor,
                action="knowledge_base.create",
                target=kb,
                changes={"name": [None, name]},
            )
    except IntegrityError:
        raise InvalidInput.field("name", f"A knowledge base named {name!r} exists.") from None
    return kb


def knowledge_base_update(
    *, knowledge_base: KnowledgeBase, actor: Actor, **fields: Any
) -> KnowledgeBase:
    """Rename or describe; the language is fixed once documents are indexed in it."""
    actor.require("knowledge:write")
    if "name" in fields:
        fields["name"] = require_name(fields["name"])
    if "language" in fields and fields["language"] != knowledge_base.language:
        raise InvalidInput.field(
            "language", "Create a new knowledge base to index in another language."
        )
    changes = {
        k: [getattr(knowledge_base, k), v]
        for k, v in fields.items()
        if getattr(knowledge_base, k) != v
    }
    if not changes:
        return knowledge_base
    try:
        with transaction.atomic():
            for key, (_, value) in changes.items():
                setattr(knowledge_base, key, value)
            knowledge_base.save()
            audit_event_record(
                actor=actor, action="knowledge_base.update", target=knowledge_base, changes=changes
            )
    except IntegrityError:
        raise InvalidInput.field(
            "name", f"A knowledge base named {fields['name']!r} exists."
        ) from None
    return knowledge_base


def knowledge_base_delete(*, knowledge_base: KnowledgeBase, actor: Actor) -> None:
    actor.require("knowledge:write")
    with transaction.atomic():
        versions = list(
            VersionKnowledgeBase.objects.for_tenant(knowledge_base.tenant)
            .filter(knowledge_base=knowledge_base)
            .values_list("version__public_id", flat=True)
        )
        if versions:
            raise Conflict(
                f"Versions use this knowledge base: {', '.join(versions)}.", code="in_use"
            )
        audit_event_record(actor=actor, action="knowledge_base.delete", target=knowledge_base)
        knowledge_base.delete()


def document_add(
    *,
    knowledge_base: KnowledgeBase,
    actor: Actor,
    title: str,
    filename: str,
    content_type: str,
    raw: bytes,
) -> Document:
    """Store a document's text and index it in passages. Nothing is stored if it cannot be read."""
    actor.require("knowledge:write")
    tenant = knowledge_base.tenant
    if len(raw) > tenant.max_document_bytes:
        raise InvalidInput.field(
            "file",
            f"The document is {len(raw):,} bytes; "
            f"this account's limit is {tenant.max_document_bytes:,}.",
            code="limit_exceeded",
        )
    content_type = documents.guess_content_type(filename, content_type)
    try:
        text = documents.extract_text(raw, content_type)
    except documents.UnreadableDocument as exc:
        raise InvalidInput.field("file", str(exc), code="unreadable_document") from None
    title = require_name(title or filename or "Untitled", "title", limit=200)
    pieces = documents.chunk_text(text)
    with transaction.atomic():
        document = Document.objects.create(
            tenant=tenant,
            knowledge_base=knowledge_base,
            title=title,
            filename=filename[:255],
            content_type=content_type,
            size_bytes=len(raw),
            text=text,
            chunk_count=len(pieces),
        )
        Chunk.all_tenants.bulk_create(
            Chunk(
                tenant=tenant,
                document=document,
                knowledge_base=knowledge_base,
                position=i,
                text=piece,
            )
            for i, piece in enumerate(pieces)
        )
        if connection.vendor == "postgresql":
            Chunk.objects.for_tenant(tenant).filter(document=document).update(
                search_vector=SearchVector("text", config=knowledge_base.language)
            )
        audit_event_record(
            actor=actor,
            action="document.create",
            target=document,
            changes={
                "knowledge_base": [None, knowledge_base.public_id],
                "size_bytes": [None, len(raw)],
            },
        )
    return document


def document_delete(*, document: Document, actor: Actor) -> None:
    actor.require("knowledge:write")
    with transaction.atomic():
        audit_event_record(actor=actor, action="document.delete", target=document)
        document.delete()
