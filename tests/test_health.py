import pytest
from django.test import Client


def test_liveness_needs_nothing() -> None:
    assert Client().get("/healthz").json() == {"status": "ok"}


@pytest.mark.django_db
def test_readiness_checks_the_database_and_redis() -> None:
    assert Client().get("/readyz").json() == {"status": "ok", "database": "ok", "redis": "ok"}


@pytest.mark.django_db
def test_readiness_reports_an_unreachable_redis(settings) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        }
    }
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["redis"] == "unavailable"


def test_an_unhandled_api_error_is_a_problem_document() -> None:
    from django.test import RequestFactory

    from config.views import server_error

    response = server_error(RequestFactory().get("/v1/members"))
    assert response.status_code == 500
    assert response["Content-Type"] == "application/problem+json"
    assert b'"code": "server_error"' in response.content
