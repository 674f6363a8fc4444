import json
import logging

import pytest

from config.logging import JsonFormatter, RequestContextFilter
from tests.conftest import TenantWorld


@pytest.mark.django_db
def test_each_request_is_logged_once_as_json_with_its_ids(
    world: TenantWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="switchboard.request")
    response = world.client.get("/v1/members", HTTP_X_REQUEST_ID="trace-0001-abcd")
    assert response["X-Request-ID"] == "trace-0001-abcd"
    records = [r for r in caplog.records if r.name == "switchboard.request"]
    assert len(records) == 1
    RequestContextFilter().filter(records[0])
    line = json.loads(JsonFormatter().format(records[0]))
    assert line["request_id"] == "trace-0001-abcd"
    assert line["tenant_id"] == world.tenant.public_id
    assert line["status"] == 200
    assert line["path"] == "/v1/members"
    assert line["level"] == "info"


@pytest.mark.django_db
def test_a_malformed_request_id_is_replaced(client) -> None:
    response = client.get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces\n")
    assert response["X-Request-ID"] != "bad id with spaces\n"
    assert len(response["X-Request-ID"]) == 32


def test_exceptions_are_logged_with_their_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, exc_info=True)
        import sys

        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in line["exception"]
