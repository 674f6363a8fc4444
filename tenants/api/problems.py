"""RFC 9457 problem details for every API error.

Each body has `type` (about:blank: the status says it all), `title`, `status`, `detail`, the
request path as `instance`, a stable machine-readable `code`, the `request_id`, and for invalid
input an `errors` list of `{field, code, message}`.
"""

from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.logging import request_id_var
from tenants.errors import InvalidInput, ServiceError, TooManyRequests

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_body(
    status: int, detail: str, code: str, instance: str, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
        "request_id": request_id_var.get(),
    }
    body.update(extra)
    return body


def _flatten(details: Any, prefix: str = "") -> list[dict[str, str]]:
    if isinstance(details, dict):
        if set(details) == {"message", "code"}:
            return [{"field": prefix or "non_field_errors", **details}]
        out: list[dict[str, str]] = []
        for key, value in details.items():
            out += _flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(details, list):
        out = []
        for index, value in enumerate(details):
            nested = isinstance(value, dict | list) and not (
                isinstance(value, dict) and set(value) == {"message", "code"}
            )
            out += _flatten(value, f"{prefix}.{index}" if nested and prefix else prefix)
        return out
    return [{"field": prefix or "non_field_errors", "message": str(details), "code": "invalid"}]


def _validation_problem(exc: exceptions.ValidationError, instance: str) -> dict[str, Any]:
    errors = [
        {"field": e["field"], "code": e["code"], "message": e["message"]}
        for e in _flatten(exc.get_full_details())
    ]
    detail = errors[0]["message"] if len(errors) == 1 else f"{len(errors)} fields are invalid."
    return problem_body(400, detail, "invalid", instance, errors=errors)


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    request = context.get("request")
    instance = request.path if request is not None else ""

    if isinstance(exc, ServiceError):
        extra: dict[str, Any] = {}
        if isinstance(exc, InvalidInput) and exc.errors:
            extra["errors"] = [
                {"field": field, "code": exc.code, "message": message}
                for field, messages in exc.errors.items()
                for message in messages
            ]
        headers: dict[str, str] = {}
        if isinstance(exc, TooManyRequests):
            extra["limit"] = exc.limit
            extra["resets_at"] = exc.resets_at.isoformat() if exc.resets_at else None
            retry_after = exc.retry_after(timezone.now())
            if retry_after is not None:
                headers["Retry-After"] = str(retry_after)
        body = problem_body(exc.status, exc.detail, exc.code, instance, **extra)
        return Response(body, status=exc.status, content_type=PROBLEM_CONTENT_TYPE, headers=headers)

    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: Django's 500 handler answers (config.views)
    if isinstance(exc, exceptions.ValidationError):
        body = _validation_problem(exc, instance)
    else:
        assert isinstance(exc, exceptions.APIException)
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        body = problem_body(response.status_code, str(exc.detail), str(code), instance)
    response.data = body
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def problem_response(request: HttpRequest, status: int, detail: str, code: str) -> JsonResponse:
    """A problem-details response outside DRF (unknown /v1/ URLs, unhandled errors)."""
    return JsonResponse(
        problem_body(status, detail, code, request.path),
        status=status,
        content_type=PROBLEM_CONTENT_TYPE,
    )
