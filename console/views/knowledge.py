"""Knowledge bases, their documents and passages, and "Try a search".

Changes go through agents.services.knowledge as in the API; the search is
agents.selectors.knowledge_search, the one the API and the search_knowledge tool run.
"""

from typing import Any

from django.contrib import messages
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import path

from agents.models import Chunk, Document, KnowledgeBase
from agents.selectors import documents_of, knowledge_search
from agents.services import knowledge as services
from console.context import (
    confirmation,
    console_view,
    owned,
    paginate,
    service_errors_to_form,
)
from console.forms.knowledge import DocumentUploadForm, KnowledgeBaseForm, SearchForm
from tenants.access import TenantContext
from tenants.errors import Conflict, InvalidInput

CHUNKS_PER_PAGE = 50


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


@console_view("knowledge:read")
def knowledge_list(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    page = paginate(request, KnowledgeBase.objects.for_tenant(ctx.tenant).order_by("name"))
    counts = dict(
        Document.objects.for_tenant(ctx.tenant)
        .filter(knowledge_base__in=[kb.pk for kb in page])
        .values("knowledge_base")
        .annotate(n=Count("pk"))
        .values_list("knowledge_base", "n")
    )
    rows = [{"kb": kb, "documents": counts.get(kb.pk, 0)} for kb in page]
    return render(request, "console/knowledge/list.html", {"page": page, "rows": rows})


@console_view("knowledge:write")
def knowledge_new(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    form = KnowledgeBaseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            kb = services.knowledge_base_create(
                tenant=ctx.tenant, actor=ctx.actor, **form.cleaned_data
            )
        except InvalidInput as exc:
            service_errors_to_form(form, exc)
        else:
            messages.success(request, f"Knowledge base {kb.name} created. Add its documents.")
            return redirect("console:knowledge-base", id=kb.public_id)
    status = 400 if form.is_bound else 200
    return render(request, "console/knowledge/new.html", {"form": form}, status=status)


def render_knowledge_base(
    request: HttpRequest,
    ctx: TenantContext,
    kb: KnowledgeBase,
    *,
    edit_form: KnowledgeBaseForm | None = None,
    upload_form: DocumentUploadForm | None = None,
    status: int = 200,
) -> HttpResponse:
    documents = documents_of(kb).order_by("-created_at")
    totals = documents.aggregate(chunks=Sum("chunk_count"), size=Sum("size_bytes"))
    can_write = ctx.actor.can("knowledge:write")
    if edit_form is None and can_write:
        edit_form = KnowledgeBaseForm(
            initial={"name": kb.name, "description": kb.description}, editing=True
        )
    context = {
        "kb": kb,
        "page": paginate(request, documents),
        "chunks": totals["chunks"] or 0,
        "size": filesizeformat(totals["size"] or 0),
        "edit_form": edit_form,
        "upload_form": upload_form or (DocumentUploadForm() if can_write else None),
        "search_form": SearchForm(),
    }
    return render(request, "console/knowledge/base.html", context, status=status)


@console_view("knowledge:read")
def knowledge_base_detail(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    """The base, its documents, upload, search; a POST (knowledge:write) renames or describes."""
    kb = owned(KnowledgeBase, ctx, id)
    if request.method != "POST":
        return render_knowledge_base(request, ctx, kb)
    ctx.actor.require("knowledge:write")
    form = KnowledgeBaseForm(request.POST, editing=True)
    if form.is_valid():
        try:
            services.knowledge_base_update(knowledge_base=kb, actor=ctx.actor, **form.cleaned_data)
        except InvalidInput as exc:
            service_errors_to_form(form, exc)
            kb.refresh_from_db()  # a refused rename may have been set on the instance
        else:
            messages.success(request, f"Knowledge base {kb.name} saved.")
            return redirect("console:knowledge-base", id=kb.public_id)
    return render_knowledge_base(request, ctx, kb, edit_form=form, status=400)


@console_view("knowledge:write")
def knowledge_base_delete(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    kb = owned(KnowledgeBase, ctx, id)
    if request.method != "POST":
        return redirect("console:knowledge-base", id=kb.public_id)
    asking = confirmation(
        request,
        title="Delete knowledge base",
        message=f"Delete {kb.name} with all its documents? This cannot be undone.",
        details=[("Name", kb.name), ("Documents", str(documents_of(kb).count()))],
    )
    if asking:
        return asking
    try:
        services.knowledge_base_delete(knowledge_base=kb, actor=ctx.actor)
    except Conflict as exc:
        messages.error(request, exc.detail)
        return redirect("console:knowledge-base", id=kb.public_id)
    messages.success(request, f"Knowledge base {kb.name} deleted.")
    return redirect("console:knowledge")


@console_view("knowledge:write")
def document_upload(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    """A multipart upload, handed to document_add with the file's name, type and bytes."""
    kb = owned(KnowledgeBase, ctx, id)
    if request.method != "POST":
        return redirect("console:knowledge-base", id=kb.public_id)
    form = DocumentUploadForm(request.POST, request.FILES)
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            document = services.document_add(
                knowledge_base=kb,
                actor=ctx.actor,
                title=form.cleaned_data["title"],
                filename=upload.name or "",
                content_type=upload.content_type or "",
                raw=upload.read(),
            )
        except InvalidInput as exc:
            service_errors_to_form(form, exc)
        else:
            messages.success(
                request, f"{document.title} added: {document.chunk_count} passages indexed."
            )
            return redirect("console:document", id=document.public_id)
    return render_knowledge_base(request, ctx, kb, upload_form=form, status=400)


def search_context(ctx: TenantContext, kb: KnowledgeBase, request: HttpRequest) -> dict[str, Any]:
    form = SearchForm(request.GET) if "q" in request.GET else SearchForm()
    passages = None
    if form.is_bound and form.is_valid():
        passages = knowledge_search(
            tenant=ctx.tenant,
            knowledge_bases=[kb],
            query=form.cleaned_data["q"],
            limit=form.limit_value(),
        )
    return {"kb": kb, "search_form": form, "passages": passages}


@console_view("knowledge:read")
def knowledge_base_search(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    """The passages a search_knowledge tool would get for a question, ranked, with scores."""
    kb = owned(KnowledgeBase, ctx, id)
    context = search_context(ctx, kb, request)
    template = (
        "console/knowledge/_search_results.html"
        if is_htmx(request)
        else "console/knowledge/search.html"
    )
    return render(request, template, context)


@console_view("knowledge:read")
def document_detail(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    document = owned(
        Document, ctx, id, Document.objects.for_tenant(ctx.tenant).select_related("knowledge_base")
    )
    chunks = Chunk.objects.for_tenant(ctx.tenant).filter(document=document).order_by("position")
    context = {"document": document, "page": paginate(request, chunks, per_page=CHUNKS_PER_PAGE)}
    return render(request, "console/knowledge/document.html", context)


@console_view("knowledge:write")
def document_delete(request: HttpRequest, ctx: TenantContext, id: str) -> HttpResponse:
    document = owned(
        Document, ctx, id, Document.objects.for_tenant(ctx.tenant).select_related("knowledge_base")
    )
    kb = document.knowledge_base
    if request.method != "POST":
        return redirect("console:document", id=document.public_id)
    asking = confirmation(
        request,
        title="Delete document",
        message=f"Delete {document.title} and its passages from {kb.name}?",
        details=[("Title", document.title), ("Passages", str(document.chunk_count))],
    )
    if asking:
        return asking
    services.document_delete(document=document, actor=ctx.actor)
    messages.success(request, f"{document.title} deleted.")
    return redirect("console:knowledge-base", id=kb.public_id)


urlpatterns = [
    path("", knowledge_list, name="knowledge"),
    path("new/", knowledge_new, name="knowledge-new"),
    path("documents/<str:id>/", document_detail, name="document"),
    path("documents/<str:id>/delete/", document_delete, name="document-delete"),
    path("<str:id>/", knowledge_base_detail, name="knowledge-base"),
    path("<str:id>/delete/", knowledge_base_delete, name="knowledge-base-delete"),
    path("<str:id>/documents/", document_upload, name="knowledge-upload"),
    path("<str:id>/search/", knowledge_base_search, name="knowledge-search"),
]
