"""The Knowledge pages: bases, uploads, passages and "Try a search"."""

import html as entities
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from agents.models import Chunk, Document, KnowledgeBase
from tenants.roles import Role
from tests import factories
from tests.conftest import TenantWorld
from tests.console.conftest import member_client, text
from tests.test_isolation import snapshot

pytestmark = pytest.mark.django_db

HOURS = b"Opening hours\n\nThe shop opens at nine and closes at five on weekdays.\n\n" + (
    b"Returns are accepted within thirty days with a receipt. " * 40
)


def kb_url(kb: KnowledgeBase, name: str = "knowledge-base") -> str:
    return reverse(f"console:{name}", kwargs={"id": kb.public_id})


def document_url(document: Document, name: str = "document") -> str:
    return reverse(f"console:{name}", kwargs={"id": document.public_id})


def field_errors(html: str, name: str) -> list[str]:
    match = re.search(
        rf'<div class="field has-error">(?:(?!<div class="field).)*?name="{name}"(.*?)</div>',
        html,
        re.S,
    )
    assert match, f"no error next to {name}"
    return [entities.unescape(m) for m in re.findall(r'<p class="error">(.*?)</p>', match.group(1))]


def upload(name: str, content: bytes, content_type: str = "text/plain") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type)


def test_the_list_shows_each_base_with_its_document_count(world: TenantWorld) -> None:
    factories.DocumentFactory(knowledge_base=world.knowledge_base)
    factories.KnowledgeBaseFactory(tenant=world.tenant, name="Empty one")
    html = text(member_client(world).get(reverse("console:knowledge")))
    row = re.search(rf"{world.knowledge_base.name}</a>.*?</tr>", html, re.S)
    assert row and '<td class="number">2</td>' in row.group(0)
    empty = re.search(r"Empty one</a>.*?</tr>", html, re.S)
    assert empty and '<td class="number">0</td>' in empty.group(0)
    assert "New knowledge base" in html


def test_without_bases_the_list_says_what_to_do(world: TenantWorld) -> None:
    KnowledgeBase.objects.for_tenant(world.tenant).delete()
    html = text(member_client(world).get(reverse("console:knowledge")))
    assert "No knowledge bases yet" in html
    viewer = text(member_client(world, Role.VIEWER).get(reverse("console:knowledge")))
    assert "New knowledge base" not in viewer


def test_a_base_is_created_and_a_taken_name_is_refused_next_to_the_field(
    world: TenantWorld,
) -> None:
    client = member_client(world)
    data = {"name": "FAQ", "description": "Questions callers ask", "language": "french"}
    response = client.post(reverse("console:knowledge-new"), data, follow=True)
    kb = KnowledgeBase.objects.for_tenant(world.tenant).get(name="FAQ")
    assert response.redirect_chain[-1][0] == kb_url(kb)
    assert kb.language == "french"
    again = client.post(reverse("console:knowledge-new"), data)
    assert again.status_code == 400
    assert field_errors(text(again), "name") == ["A knowledge base named 'FAQ' exists."]
    assert "Questions callers ask</textarea>" in text(again)


def test_the_base_page_lists_documents_and_edits_the_base(world: TenantWorld) -> None:
    client = member_client(world)
    html = text(client.get(kb_url(world.knowledge_base)))
    assert world.document.title in html
    assert "indexed" in html
    assert "Upload a document" in html and "Try a search" in html
    delete = reverse("console:document-delete", kwargs={"id": world.document.public_id})
    assert f'action="{delete}"' in html
    response = client.post(
        kb_url(world.knowledge_base), {"name": "Policies", "description": "Ours"}, follow=True
    )
    assert "Knowledge base Policies saved." in text(response)
    world.knowledge_base.refresh_from_db()
    assert (world.knowledge_base.name, world.knowledge_base.description) == ("Policies", "Ours")


def test_uploading_a_text_file_indexes_it_and_shows_its_passages(world: TenantWorld) -> None:
    response = member_client(world).post(
        kb_url(world.knowledge_base, "knowledge-upload"),
        {"title": "", "file": upload("hours.txt", HOURS)},
        follow=True,
    )
    document = Document.objects.for_tenant(world.tenant).get(filename="hours.txt")
    assert response.redirect_chain[-1][0] == document_url(document)
    html = text(response)
    assert f"hours.txt added: {document.chunk_count} passages indexed." in html
    assert document.title == "hours.txt"
    assert document.chunk_count > 1
    positions = [int(p) for p in re.findall(r'<span class="at">#(\d+)</span>', html)]
    assert positions == list(range(document.chunk_count))
    assert "The shop opens at nine" in html


def test_an_unsupported_file_is_refused_next_to_the_field(world: TenantWorld) -> None:
    before = snapshot(world.tenant)
    response = member_client(world).post(
        kb_url(world.knowledge_base, "knowledge-upload"),
        {"title": "Logo", "file": upload("logo.png", b"\x89PNG", "image/png")},
    )
    assert response.status_code == 400
    assert field_errors(text(response), "file")[0].startswith("Unsupported type 'image/png'")
    assert 'value="Logo"' in text(response)
    assert snapshot(world.tenant) == before


def test_a_document_over_the_accounts_limit_is_refused(world: TenantWorld) -> None:
    world.tenant.max_document_bytes = 100
    world.tenant.save()
    response = member_client(world).post(
        kb_url(world.knowledge_base, "knowledge-upload"), {"file": upload("hours.txt", HOURS)}
    )
    assert response.status_code == 400
    [error] = field_errors(text(response), "file")
    assert "this account's limit is 100." in error


def test_a_missing_file_is_refused_by_the_form(world: TenantWorld) -> None:
    response = member_client(world).post(kb_url(world.knowledge_base, "knowledge-upload"), {})
    assert field_errors(text(response), "file") == ["This field is required."]


def test_a_viewer_reads_a_base_without_changing_it(world: TenantWorld) -> None:
    client = member_client(world, Role.VIEWER)
    html = text(client.get(kb_url(world.knowledge_base)))
    assert world.document.title in html
    assert "Try a search" in html
    assert "Upload a document" not in html
    assert "Delete knowledge base" not in html
    assert "/delete/" not in html
    assert "Save knowledge base" not in html
    before = snapshot(world.tenant)
    assert client.post(kb_url(world.knowledge_base), {"name": "x"}).status_code == 403
    upload_url = kb_url(world.knowledge_base, "knowledge-upload")
    assert client.post(upload_url, {"file": upload("a.txt", b"x")}).status_code == 403
    assert snapshot(world.tenant) == before


def add_hours(world: TenantWorld) -> Document:
    member_client(world).post(
        kb_url(world.knowledge_base, "knowledge-upload"),
        {"title": "Hours", "file": upload("hours.txt", HOURS)},
    )
    return Document.objects.for_tenant(world.tenant).get(title="Hours")


def test_a_search_ranks_passages_as_the_search_tool_would(world: TenantWorld) -> None:
    add_hours(world)
    client = member_client(world, Role.VIEWER)
    search = kb_url(world.knowledge_base, "knowledge-search")
    url = search + "?q=when+does+the+shop+open"
    partial = client.get(url, HTTP_HX_REQUEST="true")
    assert partial.status_code == 200
    html = text(partial)
    assert "<html" not in html
    assert 'data-testid="search-results"' in html
    [passage] = re.findall(r"<pre>(.*?)</pre>", html, re.S)
    assert "The shop opens at nine" in passage
    assert float(re.findall(r"score ([0-9.]+)", html)[0]) > 0
    returns = text(client.get(search + "?q=returns+receipt&limit=2", HTTP_HX_REQUEST="true"))
    assert len(re.findall(r"<pre>", returns)) == 2
    scores = [float(s) for s in re.findall(r"score ([0-9.]+)", returns)]
    assert scores == sorted(scores, reverse=True)
    full = text(client.get(url))
    assert "<html" in full and "The shop opens at nine" in full


def test_a_search_without_a_match_says_so(world: TenantWorld) -> None:
    url = kb_url(world.knowledge_base, "knowledge-search") + "?q=zebras"
    html = text(member_client(world).get(url, HTTP_HX_REQUEST="true"))
    assert "No passage matches" in html
    empty = text(member_client(world).get(kb_url(world.knowledge_base, "knowledge-search")))
    assert "Ask a question" in empty


def test_the_document_page_shows_metadata_and_deleting_asks_first(world: TenantWorld) -> None:
    document = add_hours(world)
    client = member_client(world)
    html = text(client.get(document_url(document)))
    assert "hours.txt" in html and "text/plain" in html
    assert "Delete document" in html
    asked = client.post(document_url(document, "document-delete"))
    assert 'name="confirmed" value="yes"' in text(asked)
    assert Document.objects.for_tenant(world.tenant).filter(pk=document.pk).exists()
    done = client.post(document_url(document, "document-delete"), {"confirmed": "yes"}, follow=True)
    assert done.redirect_chain[-1][0] == kb_url(world.knowledge_base)
    assert not Document.objects.for_tenant(world.tenant).filter(pk=document.pk).exists()
    assert not Chunk.objects.for_tenant(world.tenant).filter(document_id=document.pk).exists()


def test_deleting_a_base_asks_first_and_keeps_one_in_use(world: TenantWorld) -> None:
    client = member_client(world)
    link = factories.VersionKnowledgeBaseFactory(
        version=world.version, knowledge_base=world.knowledge_base
    )
    delete_url = kb_url(world.knowledge_base, "knowledge-base-delete")
    asked = text(client.post(delete_url))
    assert "Delete knowledge base" in asked and "<dt>Documents</dt><dd>1</dd>" in asked
    refused = client.post(delete_url, {"confirmed": "yes"}, follow=True)
    assert f"Versions use this knowledge base: {world.version.public_id}." in text(refused)
    link.delete()
    done = client.post(delete_url, {"confirmed": "yes"}, follow=True)
    assert done.redirect_chain[-1][0] == reverse("console:knowledge")
    assert not KnowledgeBase.objects.for_tenant(world.tenant).filter(pk=world.knowledge_base.pk)
