import logging

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.http import require_GET

from tenants.api.problems import problem_response

logger = logging.getLogger(__name__)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/v1/")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return problem_response(request, 404, "There is nothing at this address.", "not_found")
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return problem_response(
            request, 500, "Something went wrong on our side; it has been logged.", "server_error"
        )
    return defaults.server_error(request)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database (and Redis, when configured) answer."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # report any failure as "not ready", never as a 500
        logger.warning("readiness: database unavailable", extra={"error": str(exc)})
        checks["database"] = "unavailable"
    if settings.REDIS_URL:
        try:
            cache.get("readyz")
            checks["redis"] = "ok"
        except Exception as exc:
            logger.warning("readiness: redis unavailable", extra={"error": str(exc)})
            checks["redis"] = "unavailable"
    ready = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", **checks}, status=200 if ready else 503
    )
