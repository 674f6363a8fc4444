"""Hostile input against the whole API, generated from its OpenAPI schema by Schemathesis.

Every operation of the schema (the one /v1/schema serves) is called in-process through the WSGI
handler as tenant A, with an API key holding every scope: the schema's examples, boundary values
(missing, empty, oversized, wrong types, unexpected methods: Schemathesis's coverage phase) and
random valid and invalid requests. Every default Schemathesis check runs: no 5xx, each response
matches its documented schema, status code and content type, invalid input is refused, and an
operation that answers with a key also refuses no key and a forged one. On top of those:

- every 4xx is RFC 9457 problem details, as tenants/api/problems.py writes them;
- an `{id}` in the path is mostly A's own object of that route, so bodies get past the lookup to
  validation; sometimes it is tenant B's object, which is always a 404;
- no response to A carries any id of tenant B's, and nothing of B's changes;
- an object A reads by id, B's key cannot (404).

FUZZ_EXAMPLES (default 5) is the number of random requests per operation and mode; the boundary
values are always sent in full. See docs/testing.md.
"""

import json
import os
import re
import zlib
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import pytest
import schemathesis
import yaml
from django.apps import apps
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.test import Client
from django.urls import resolve
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.case import Case
from schemathesis.generation.meta import negated_parameters
from schemathesis.openapi.checks import RejectedPositiveData
from werkzeug.test import Client as WsgiClient

from tenants import keys
from tenants.models import Tenant, TenantOwnedModel
from tests import factories
from tests.api_routes import ROUTES_BY_NAME
from tests.conftest import TenantWorld

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))
# A's key exists before the tenants do: Schemathesis builds the boundary-value requests, with
# their credentials, while pytest collects.
SECRET_A = keys.generate_key()

ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]  # Schemathesis's default
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20240601,
        "generation": {
            "mode": "all",
            "max-examples": EXAMPLES,
            "deterministic": True,
            "database": "none",
            # DRF refuses NUL in every string (PostgreSQL cannot store it); the schema's strings
            # do not say so.
            "allow-x00": False,
        },
        # Generation must not depend on answers, which hold this run's random ids.
        "phases": {
            "examples": {"extra-data-sources": {"responses": False}},
            "coverage": {"extra-data-sources": {"responses": False}},
            "fuzzing": {
                "extra-data-sources": {"responses": False},
                "error-feedback": {"enabled": False},
            },
        },
        "auth": {"openapi": {"apiKey": {"bearer": SECRET_A}}},
        "operations": [
            {
                # Writes go through services that check what a schema cannot state: that ids
                # name objects of the tenant, names are unique, limits fit together, a key's
                # expiry is in the future. Valid-looking input may get a 400 (or a 422 for an
                # Idempotency-Key reused with another body); the problem names the field.
                "include-method": ["POST", "PUT", "PATCH", "DELETE"],
                "checks": {
                    "positive_data_acceptance": {"expected-statuses": [*ACCEPTED, 400, 422]}
                },
            },
            {
                # Reads that take another object's id in the query.
                "include-name": [
                    "GET /v1/phone-numbers/available",
                    "GET /v1/versions/{id}/diff",
                ],
                "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, 400]}},
            },
        ],
    }
)

# The schema /v1/schema serves (test_the_fuzzed_schema_is_the_one_served checks), generated here
# because requests cannot be served while pytest collects.
RAW_SCHEMA = json.loads(
    OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True))
)
schema = schemathesis.openapi.from_dict(RAW_SCHEMA, config=CONFIG)
schema.app = WSGIHandler()


@schema.hook
def filter_failure(context: Any, failure: Any, case: Case, response: Any) -> bool:
    """Keep every failure but invalid input the API reads by design, as Django, DRF and forms
    do: an empty query parameter is one not given, one given several times is its last value,
    and a number sent for a text field is its digits."""
    if isinstance(failure, RejectedPositiveData):
        # An opaque cursor is valid only as a page's links give it.
        return _refused_fields(response) != {"cursor"}
    if not isinstance(failure, AcceptedNegativeData):
        return True
    negated = list(negated_parameters(case.meta))
    return not negated or not all(_read_by_design(case, *n) for n in negated)


def _refused_fields(response: Any) -> set[str]:
    try:
        return {error["field"] for error in response.json().get("errors", [])}
    except (ValueError, AttributeError, KeyError, TypeError):
        return set()


def _read_by_design(case: Case, name: str, location: ParameterLocation) -> bool:
    if location == ParameterLocation.QUERY:
        # Empty, it was not given; given several times, the last one counts (Django's reading).
        value = (case.query or {}).get(name)
        return value == "" or isinstance(value, list)
    if location == ParameterLocation.BODY and isinstance(case.body, dict):
        # The coverage phase names the body's field by its schema location.
        data = case.meta.phase.data if case.meta else None
        field = re.fullmatch(r"/properties/([^/]+)/type", getattr(data, "location", None) or "")
        value = case.body.get(field.group(1)) if field else None
        return isinstance(value, int | float) and not isinstance(value, bool)
    return False


PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance", "code", "request_id"}


class Fuzz:
    """The two tenants, and what tenant B must never lose or show to A."""

    def __init__(self, a: TenantWorld, b: TenantWorld) -> None:
        self.a, self.b = a, b
        self.b_rows = self.snapshot(b.tenant)
        self.b_ids = {
            str(row["public_id"])
            for rows in self.b_rows.values()
            for row in rows
            if row.get("public_id")
        }

    @staticmethod
    def snapshot(tenant: Tenant) -> dict[str, list[dict[str, Any]]]:
        rows: dict[str, list[dict[str, Any]]] = {
            "tenant": [dict(row) for row in Tenant.objects.filter(pk=tenant.pk).values()]
        }
        for model in apps.get_models():
            if issubclass(model, TenantOwnedModel):
                values = model.all_tenants.filter(tenant=tenant).order_by("pk").values()
                # B's key is used to read A's objects; its use is recorded on it.
                rows[model._meta.label] = [
                    {k: v for k, v in row.items() if k != "last_used_at"} for row in values
                ]
        return rows


@pytest.fixture
def _connections_stay_open() -> Iterator[None]:
    """Requests share the test's transaction, as Django's test client arranges."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz(
    world: TenantWorld, other_world: TenantWorld, settings: Any, _connections_stay_open: None
) -> Iterator[Fuzz]:
    settings.ALLOWED_HOSTS = ["localhost", "testserver"]  # Schemathesis's WSGI client's host
    # Thousands of requests a minute from one key: the limits are not under test here.
    settings.API_RATE_LIMIT_PER_PRINCIPAL = 1_000_000
    for tenant in (world.tenant, other_world.tenant):
        Tenant.objects.filter(pk=tenant.pk).update(api_requests_per_minute=1_000_000)
    factories.ApiKeyFactory(tenant=world.tenant, secret=SECRET_A)
    state = Fuzz(world, other_world)
    yield state
    assert Fuzz.snapshot(other_world.tenant) == state.b_rows, "tenant B's data changed"


def _aim(case: Case, fuzz: Fuzz) -> str:
    """Point a valid `{id}` at A's own object (mostly) or at B's, deterministically."""
    params = case.path_parameters or {}
    if "id" not in params or case.meta is None or case.meta.is_negative_at(ParameterLocation.PATH):
        return "generated"
    route = ROUTES_BY_NAME[str(resolve(case.operation.path.replace("{id}", "x")).url_name)]
    assert route.object is not None
    pick = zlib.crc32(json.dumps(params, sort_keys=True, default=str).encode()) % 8
    if pick == 0:
        return "generated"
    aim = "other" if pick == 1 else "own"
    owner = fuzz.b if aim == "other" else fuzz.a
    case.path_parameters = {**params, "id": getattr(owner, route.object).public_id}
    return aim


def _assert_problem(response: Any) -> None:
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.split(";")[0] == "application/problem+json", content_type
    body = response.json()
    assert set(body) >= PROBLEM_FIELDS, body
    assert body["status"] == response.status_code, body
    assert body["title"] == HTTPStatus(response.status_code).phrase, body
    assert body["type"] == "about:blank" and body["detail"] and body["code"], body


@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
def test_api(case: Case, fuzz: Fuzz) -> None:
    aim = _aim(case, fuzz)
    response = case.call_and_validate()
    if 400 <= response.status_code < 500:
        _assert_problem(response)
    # B's id in a 404's `instance` (the path asked for) is only A's request echoed back.
    sent = json.dumps([case.formatted_path, case.query, case.body], default=str)
    leaked = {i for i in fuzz.b_ids if i.encode() in response.content and i not in sent}
    assert not leaked, f"tenant B's ids in a response to A: {leaked}"
    if dict(case.headers or {}).get("Authorization") != f"Bearer {SECRET_A}":
        # Without A's key (none, a forged one, another scheme's), nothing but a 401, or the
        # 404 of a path that matches no route.
        unroutable = case.meta is not None and case.meta.is_negative_at(ParameterLocation.PATH)
        assert response.status_code in ((401, 404) if unroutable else (401,)), response.text
    elif aim == "other":
        assert response.status_code == 404, response.text
    elif aim == "own" and case.method == "GET" and response.status_code == 200:
        peer = WsgiClient(schema.app).get(
            case.formatted_path,
            query_string=case.query,
            headers={"Authorization": f"Bearer {fuzz.b.api_key.secret}"},
        )
        assert peer.status_code == 404, peer.get_data()


@pytest.mark.django_db
def test_the_fuzzed_schema_is_the_one_served() -> None:
    served = yaml.safe_load(Client().get("/v1/schema").content)
    assert json.loads(json.dumps(served, default=str)) == RAW_SCHEMA


# --- What the fuzzing found, pinned -----------------------------------------------------------


@pytest.mark.django_db
def test_list_parameters_the_api_cannot_read_are_refused_by_name(world: TenantWorld) -> None:
    for path, query, field in [
        ("api-keys", "limit=ten", "limit"),
        ("api-keys", "limit=0", "limit"),
        ("api-keys", "cursor=abc", "cursor"),
        ("api-keys", "revoked=yes", "revoked"),
        ("api-keys", "revoked=2", "revoked"),
        ("audit-events", "since=0001-01-01T00:00:00%2B01:00", "since"),  # before year 1 in UTC
    ]:
        response = world.client.get(f"/v1/{path}?{query}")
        assert response.status_code == 400, (query, response.content)
        assert [e["field"] for e in response.json()["errors"]] == [field]
    # Empty means not given; above the maximum gives the maximum.
    assert world.client.get("/v1/api-keys?limit=&revoked=&cursor=").status_code == 200
    assert world.client.get("/v1/api-keys?limit=100000").status_code == 200


@pytest.mark.django_db
def test_any_iso_offset_is_read_in_utc(world: TenantWorld) -> None:
    # PostgreSQL stores offsets up to ±15:59; ISO 8601 (and Python) allow more.
    response = world.client.get("/v1/calls", {"since": "2000-01-01T00:00:00-21:54"})
    assert response.status_code == 200
    assert [c["id"] for c in response.json()["results"]] == [world.call.public_id]


@pytest.mark.django_db
def test_list_filters_never_hide_the_object_a_detail_route_names(world: TenantWorld) -> None:
    call = world.call  # completed
    for path in ("", "/events", "/transcript"):
        response = world.client.get(f"/v1/calls/{call.public_id}{path}?status=failed")
        assert response.status_code == 200, path
    transcript = world.client.get(f"/v1/calls/{call.public_id}/transcript").json()
    assert transcript[0]["speaker"] == "agent"  # a list, as documented
    assert world.client.trace(f"/v1/calls/{call.public_id}/events").status_code == 405


@pytest.mark.django_db
def test_a_patch_changes_only_what_it_names(world: TenantWorld) -> None:
    response = world.client.patch(f"/v1/members/{world.member.public_id}", {}, format="json")
    assert (response.status_code, response.json()["role"]) == (200, "viewer")


@pytest.mark.django_db
def test_an_export_format_is_json_or_yaml(world: TenantWorld) -> None:
    response = world.client.get(f"/v1/agents/{world.agent.public_id}/export?format=xml")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "format"


@pytest.mark.django_db
def test_numbers_beyond_what_a_column_holds_are_refused(world: TenantWorld) -> None:
    response = world.client.patch("/v1/billing", {"usage_soft_limit": 2**40}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "usage_soft_limit"
    line = world.client.get(f"/v1/billing/invoices/{world.invoice.public_id}/usage?line=²")
    assert line.status_code == 400  # a digit to str.isdigit(), not to int()
