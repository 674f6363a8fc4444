from io import StringIO

import pytest
import yaml
from django.core.management import call_command
from django.test import Client


def test_the_openapi_schema_is_valid_and_generates_without_warnings() -> None:
    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    schema = yaml.safe_load(out.getvalue())
    assert schema["info"]["title"] == "Switchboard API"
    assert "/v1/api-keys" in schema["paths"]
    create = schema["paths"]["/v1/api-keys"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    assert "application/problem+json" in create["responses"]["422"]["content"]
    assert set(schema["components"]["securitySchemes"]) == {"apiKey", "session"}


@pytest.mark.django_db
def test_the_interactive_docs_load_offline() -> None:
    page = Client().get("/v1/docs").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower()
