import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from agents.models import Chunk, Document, Tool
from tenants.models import Tenant
from tests.conftest import TenantWorld
from tests.factories import AgentVersionFactory, KnowledgeBaseFactory, VersionKnowledgeBaseFactory

pytestmark = pytest.mark.django_db


def make_pdf(text: str) -> bytes:
    """A one-page PDF showing `text` in Helvetica, built by hand (no PDF writer needed)."""
    content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def upload(world: TenantWorld, kb_id: str, name: str, content: bytes, content_type: str):
    return world.client.post(
        f"/v1/knowledge-bases/{kb_id}/documents",
        {"file": SimpleUploadedFile(name, content, content_type=content_type)},
        format="multipart",
    )


def search(world: TenantWorld, kb_id: str, query: str) -> list[dict]:
    response = world.client.post(
        f"/v1/knowledge-bases/{kb_id}/search", {"query": query}, format="json"
    )
    assert response.status_code == 200, response.content
    return list(response.json())


@pytest.mark.parametrize(
    ("name", "content_type", "content", "expected"),
    [
        ("hours.txt", "text/plain", b"We open at nine.", "We open at nine."),
        (
            "hours.md",
            "text/markdown",
            b"# Hours\n\nWe open at nine.",
            "# Hours\n\nWe open at nine.",
        ),
        (
            "hours.html",
            "text/html",
            b"<html><head><style>p{}</style></head><body><p>We open</p><p>at nine.</p>"
            b"<script>x()</script></body></html>",
            "We open\n\nat nine.",
        ),
        ("hours.pdf", "application/pdf", make_pdf("We open at nine."), "We open at nine."),
    ],
)
def test_documents_of_each_kind_are_read(
    world: TenantWorld, name: str, content_type: str, content: bytes, expected: str
) -> None:
    response = upload(world, world.knowledge_base.public_id, name, content, content_type)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["title"], body["content_type"], body["size_bytes"]) == (
        name,
        content_type,
        len(content),
    )
    document = Document.objects.for_tenant(world.tenant).get(public_id=body["id"])
    assert document.text == expected
    chunks = world.client.get(f"/v1/documents/{body['id']}/chunks").json()["results"]
    assert [c["text"] for c in chunks] == [expected]


def test_long_documents_are_split_in_order(world: TenantWorld) -> None:
    paragraphs = [f"Paragraph {i}. " + "Some detail about the topic. " * 20 for i in range(12)]
    response = world.client.post(
        f"/v1/knowledge-bases/{world.knowledge_base.public_id}/documents",
        {"title": "Manual", "content": "\n\n".join(paragraphs)},
        format="json",
    )
    document = response.json()
    assert document["chunk_count"] > 3
    chunks = world.client.get(f"/v1/documents/{document['id']}/chunks?limit=200").json()["results"]
    assert len(chunks) == document["chunk_count"]
    assert all(len(c["text"]) <= 1200 for c in chunks)
    assert "".join(c["text"] for c in chunks).replace("\n\n", "").replace(" ", "") == "".join(
        paragraphs
    ).replace(" ", "")


def test_search_ranks_and_understands_word_forms(world: TenantWorld) -> None:
    kb = world.client.post(
        "/v1/knowledge-bases", {"name": "Clinic", "language": "english"}, format="json"
    ).json()
    for title, text in [
        (
            "Parking",
            "Parking is free in the lot behind the clinic. Parked cars may stay two hours.",
        ),
        ("Payments", "We accept cards and cash. Parking fees do not apply."),
        ("Hours", "Open nine to five on weekdays."),
    ]:
        world.client.post(
            f"/v1/knowledge-bases/{kb['id']}/documents",
            {"title": title, "content": text},
            format="json",
        )
    results = search(world, kb["id"], "where can I park")
    assert connection.vendor == "postgresql"
    assert [r["title"] for r in results] == ["Parking", "Payments"]  # "park" matches parking/parked
    assert results[0]["rank"] > results[1]["rank"]
    assert search(world, kb["id"], "when are you open on weekdays")[0]["title"] == "Hours"
    assert search(world, kb["id"], "helicopter") == []


def test_search_stays_inside_the_knowledge_base(world: TenantWorld) -> None:
    other = KnowledgeBaseFactory(tenant=world.tenant)
    world.client.post(
        f"/v1/knowledge-bases/{other.public_id}/documents",
        {"title": "Secret", "content": "The vault code is in the safe."},
        format="json",
    )
    assert search(world, world.knowledge_base.public_id, "vault code") == []


def test_the_size_limit_refuses_large_documents_whole(world: TenantWorld) -> None:
    Tenant.objects.filter(pk=world.tenant.pk).update(max_document_bytes=100)
    response = upload(world, world.knowledge_base.public_id, "big.txt", b"x " * 100, "text/plain")
    assert response.status_code == 400
    assert response.json()["code"] == "limit_exceeded"
    assert "200 bytes; this account's limit is 100" in response.json()["detail"]
    assert not Document.objects.for_tenant(world.tenant).filter(title="big.txt").exists()


@pytest.mark.parametrize(
    ("name", "content_type", "content", "message"),
    [
        ("x.exe", "application/octet-stream", b"MZ", "Unsupported type"),
        ("x.pdf", "application/pdf", b"%PDF-1.4 garbage", "The PDF cannot be read"),
        ("x.txt", "text/plain", b"   \n ", "The document has no text."),
        ("x.txt", "text/plain", b"\xff\xfe\xfd\xd8", "not UTF-8"),
    ],
)
def test_unreadable_documents_are_refused(
    world: TenantWorld, name: str, content_type: str, content: bytes, message: str
) -> None:
    before = Document.objects.for_tenant(world.tenant).count()
    response = upload(world, world.knowledge_base.public_id, name, content, content_type)
    assert response.status_code == 400, response.content
    assert message in response.json()["detail"]
    assert Document.objects.for_tenant(world.tenant).count() == before


def test_deleting_a_document_removes_its_passages(world: TenantWorld) -> None:
    assert world.client.delete(f"/v1/documents/{world.document.public_id}").status_code == 204
    assert not Chunk.objects.for_tenant(world.tenant).filter(document_id=world.document.pk).exists()


def test_the_search_tool_returns_passages_with_titles(world: TenantWorld) -> None:
    world.client.post(
        f"/v1/knowledge-bases/{world.knowledge_base.public_id}/documents",
        {"title": "Refunds", "content": "Refunds take five working days."},
        format="json",
    )
    link = VersionKnowledgeBaseFactory(
        version=AgentVersionFactory(agent=world.agent), knowledge_base=world.knowledge_base
    )
    tool = world.client.post(
        "/v1/tools",
        {"name": "lookup", "description": "Search the FAQ", "kind": Tool.Kind.SEARCH_KNOWLEDGE},
        format="json",
    ).json()
    result = world.client.post(
        f"/v1/tools/{tool['id']}/test",
        {"arguments": {"query": "how long do refunds take"}, "version": link.version.public_id},
        format="json",
    ).json()
    assert result["ok"]
    assert result["result"][0] == {"document": "Refunds", "text": "Refunds take five working days."}


def test_a_knowledge_base_in_use_cannot_be_deleted(world: TenantWorld) -> None:
    VersionKnowledgeBaseFactory(version=world.version, knowledge_base=world.knowledge_base)
    response = world.client.delete(f"/v1/knowledge-bases/{world.knowledge_base.public_id}")
    assert response.status_code == 409
