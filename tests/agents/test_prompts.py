import pytest
from django.db import DatabaseError, connection, transaction

from agents.models import PromptRevision
from tests.conftest import TenantWorld

pytestmark = pytest.mark.django_db

BODY = "You work for {{ clinic }}. Open {{ hours }}. Parking: {{ parking }}."
VARIABLES = [
    {"name": "clinic", "type": "string"},
    {"name": "hours", "type": "string", "default": "9 to 5"},
    {"name": "parking", "type": "boolean", "default": True},
]


def create(world: TenantWorld, **overrides):
    body = {"name": "Reception", "body": BODY, "variables": VARIABLES, **overrides}
    return world.client.post("/v1/prompt-templates", body, format="json")


def test_a_template_starts_at_revision_one(world: TenantWorld) -> None:
    response = create(world)
    assert response.status_code == 201, response.content
    revision = response.json()["latest_revision"]
    assert revision["number"] == 1
    assert revision["body"] == BODY


def test_every_problem_in_a_template_is_reported_at_once(world: TenantWorld) -> None:
    response = create(
        world,
        body="Hi {{ name }} from {{ place }} }}",
        variables=[
            {"name": "name", "type": "text"},
            {"name": "Bad Name"},
            {"name": "n", "type": "integer", "default": "x"},
        ],
    )
    assert response.status_code == 400
    messages = [e["message"] for e in response.json()["errors"]]
    assert "Type is one of string, integer, number, boolean." in messages
    assert any("'Bad Name' is not a valid name" in m for m in messages)
    assert "The default of n must be a integer." in messages
    assert any("unmatched" in m for m in messages)
    assert "{{ place }} is used but not declared." in messages
    assert (
        not PromptRevision.objects.for_tenant(world.tenant).filter(body__contains="place").exists()
    )


def test_revisions_are_numbered_and_never_change(world: TenantWorld) -> None:
    template = create(world).json()
    second = world.client.post(
        f"/v1/prompt-templates/{template['id']}/revisions",
        {"body": "Short: {{ clinic }}", "variables": [{"name": "clinic", "type": "string"}]},
        format="json",
    )
    assert second.json()["number"] == 2
    listed = world.client.get(f"/v1/prompt-templates/{template['id']}/revisions").json()["results"]
    assert sorted(r["number"] for r in listed) == [1, 2]
    # There is no API to change a revision, and the database refuses too.
    with (
        pytest.raises(DatabaseError, match="never change"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE agents_promptrevision SET body = 'changed'")


def test_preview_renders_strictly(world: TenantWorld) -> None:
    revision = create(world).json()["latest_revision"]["id"]
    url = f"/v1/prompt-revisions/{revision}/preview"

    ok = world.client.post(url, {"variables": {"clinic": "Acme"}}, format="json")
    assert ok.json()["rendered"] == "You work for Acme. Open 9 to 5. Parking: true."

    missing = world.client.post(url, {"variables": {}}, format="json")
    assert missing.status_code == 400
    assert missing.json()["detail"] == "Missing variable: clinic."
    assert missing.json()["errors"][0]["field"] == "variables.clinic"

    wrong = world.client.post(
        url, {"variables": {"clinic": "Acme", "parking": "yes", "extra": 1}}, format="json"
    )
    fields = {e["field"]: e["message"] for e in wrong.json()["errors"]}
    assert fields == {
        "variables.parking": "parking must be a boolean.",
        "variables.extra": "extra is not a variable of this template.",
    }


def test_a_template_in_use_cannot_be_deleted(world: TenantWorld) -> None:
    response = world.client.delete(f"/v1/prompt-templates/{world.prompt_template.public_id}")
    assert response.status_code == 409
    assert response.json()["code"] == "in_use"
    assert world.published_version.public_id in response.json()["detail"]


def test_names_are_unique(world: TenantWorld) -> None:
    create(world)
    again = create(world)
    assert again.status_code == 400
    assert again.json()["errors"][0]["field"] == "name"
