from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from tenants.roles import MATRIX, MATRIX_PATH, Role, parse_matrix
from tests.api_routes import Call, Route, call_id, calls, send
from tests.conftest import TenantWorld


def test_the_matrix_is_read_from_the_roles_document() -> None:
    assert Path(MATRIX_PATH).name == "roles.md"
    assert "tenant:read" in MATRIX.by_role["viewer"]
    assert "api_keys:write" not in MATRIX.by_role["viewer"]
    assert "members:manage_owners" in MATRIX.by_role["owner"]
    assert "members:manage_owners" not in MATRIX.key_scopes


def test_changing_a_cell_changes_the_permissions() -> None:
    text = Path(MATRIX_PATH).read_text()
    edited = text.replace(
        "| `audit:read` | yes | yes | - | - | - |", "| `audit:read` | yes | yes | - | yes | - |"
    )
    assert edited != text
    assert "audit:read" in parse_matrix(edited).by_role["finance"]


@pytest.mark.parametrize(
    "damage",
    [
        (
            "| `tenant:read` | yes | yes | yes | yes | yes |",
            "| `tenant:read` | yes | maybe | yes | yes | yes |",
        ),
        ("| permission | owner |", "| permission | boss |"),
        ("| `tenant:write` |", "| tenant-write |"),
        ("## Permission matrix", "## Permissions"),
    ],
)
def test_a_malformed_matrix_stops_start_up(damage: tuple[str, str]) -> None:
    text = Path(MATRIX_PATH).read_text()
    assert damage[0] in text
    with pytest.raises(ImproperlyConfigured):
        parse_matrix(text.replace(*damage))


def test_every_permission_the_api_checks_is_in_the_matrix() -> None:
    for _, call in calls():
        assert call.permission is None or call.permission in MATRIX.permissions


@pytest.mark.django_db
@pytest.mark.parametrize("role", Role.values)
@pytest.mark.parametrize("route_call", calls(), ids=call_id)
def test_each_role_gets_exactly_what_the_matrix_grants(
    world: TenantWorld, role: str, route_call: tuple[Route, Call]
) -> None:
    route, call = route_call
    response = send(world.session_client(role), route, call, world=world)
    if call.permission is None or call.permission in MATRIX.by_role[role]:
        assert response.status_code < 400, response.content
    else:
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "permission_denied"


@pytest.mark.django_db
def test_viewer_cannot_create_keys(world: TenantWorld) -> None:
    response = world.session_client(Role.VIEWER).post(
        "/v1/api-keys", {"name": "x", "scopes": ["tenant:read"]}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["detail"] == "This action needs the api_keys:write permission."


@pytest.mark.django_db
def test_finance_cannot_invite_or_read_the_audit_log(world: TenantWorld) -> None:
    client = world.session_client(Role.FINANCE)
    invite = client.post("/v1/invitations", {"email": "a@b.co", "role": "viewer"}, format="json")
    assert invite.status_code == 403
    assert client.get("/v1/audit-events").status_code == 403
    assert client.get("/v1/members").status_code == 200
