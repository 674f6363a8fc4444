import pytest
from rest_framework.test import APIClient

from tenants.models import Tenant
from tests.conftest import TenantWorld

pytestmark = pytest.mark.django_db

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "code", "request_id"}


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert set(body) >= PROBLEM_KEYS
    assert body["status"] == status
    assert body["code"] == code
    assert body["request_id"] == response["X-Request-ID"]
    return body


def test_no_credentials(db: None) -> None:
    body = assert_problem(APIClient().get("/v1/members"), 401, "not_authenticated")
    assert body["title"] == "Unauthorized"
    assert body["instance"] == "/v1/members"


def test_invalid_input_lists_every_field(world: TenantWorld) -> None:
    response = world.client.post("/v1/invitations", {"email": "nope"}, format="json")
    body = assert_problem(response, 400, "invalid")
    assert {e["field"] for e in body["errors"]} == {"email", "role"}
    assert body["detail"] == "2 fields are invalid."


def test_malformed_json(world: TenantWorld) -> None:
    response = world.client.generic(
        "POST", "/v1/invitations", "{not json", content_type="application/json"
    )
    assert_problem(response, 400, "parse_error")


def test_unknown_address_under_the_api(world: TenantWorld) -> None:
    assert_problem(world.client.get("/v1/nothing-here"), 404, "not_found")


def test_unknown_object(world: TenantWorld) -> None:
    assert_problem(world.client.get("/v1/members/mem_doesnotexist"), 404, "not_found")


def test_method_not_allowed(world: TenantWorld) -> None:
    assert_problem(world.client.put("/v1/members", {}, format="json"), 405, "method_not_allowed")


def test_suspended_tenant(world: TenantWorld) -> None:
    Tenant.objects.filter(pk=world.tenant.pk).update(status=Tenant.Status.SUSPENDED)
    assert_problem(world.client.get("/v1/"), 403, "tenant_suspended")


def test_session_without_csrf_token_is_refused(world: TenantWorld) -> None:
    from tests.conftest import verified_login

    client = APIClient(enforce_csrf_checks=True)
    verified_login(client, world.owner.user)
    response = client.post("/v1/api-keys", {"name": "x", "scopes": ["tenant:read"]}, format="json")
    body = assert_problem(response, 403, "permission_denied")
    assert "CSRF" in body["detail"]


def test_signed_in_without_two_factor_is_anonymous_to_the_api(world: TenantWorld) -> None:
    client = APIClient()
    client.force_login(world.owner.user)  # password only: no verified device in the session
    assert_problem(client.get("/v1/members"), 401, "not_authenticated")


def test_a_user_without_membership_is_told_so(db: None) -> None:
    from tests.conftest import verified_login
    from tests.factories import UserFactory

    client = APIClient()
    verified_login(client, UserFactory())
    assert_problem(client.get("/v1/"), 403, "no_membership")
