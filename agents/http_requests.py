"""Outbound HTTP for tools: request templates filled with the model's arguments, sent only to
public addresses (tenants.ssrf), with a timeout, a response size cap and a response mapping."""

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urljoin

import httpx

from tenants.ssrf import BlockedDestination, pin

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
EXACT_PLACEHOLDER = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")
MAX_REDIRECTS = 3
MAX_RESPONSE_BYTES = 1024 * 1024
MAX_RESULT_TEXT = 4000
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class RequestSpec:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None
    response_mapping: dict[str, str] = field(default_factory=dict)
    timeout_seconds: float = 10.0


@dataclass
class HttpResult:
    ok: bool
    status: int | None
    data: Any
    error: str = ""
    duration_ms: float = 0.0


def template_names(value: Any) -> set[str]:
    """Every {name} used anywhere in a template (strings, lists, dicts)."""
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    if isinstance(value, dict):
        return set().union(*(template_names(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(template_names(v) for v in value)) if value else set()
    return set()


def _fill_text(text: str, arguments: dict[str, Any], *, url: bool = False) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in arguments or arguments[name] is None:
            raise TemplateError(f"{{{name}}} has no value")
        value = arguments[name]
        text_value = json.dumps(value) if isinstance(value, bool) else str(value)
        return quote(text_value, safe="") if url else text_value

    return PLACEHOLDER.sub(replace, text)


def fill_body(template: Any, arguments: dict[str, Any]) -> Any:
    """Fill a JSON template. A string that is only "{name}" takes the argument's own JSON value
    (numbers stay numbers); a missing optional argument leaves its key out."""
    if isinstance(template, str):
        exact = EXACT_PLACEHOLDER.match(template)
        if exact:
            return arguments.get(exact.group(1))
        return _fill_text(template, arguments)
    if isinstance(template, dict):
        filled = {key: fill_body(value, arguments) for key, value in template.items()}
        return {key: value for key, value in filled.items() if value is not None}
    if isinstance(template, list):
        return [fill_body(item, arguments) for item in template]
    return template


def build(
    spec: RequestSpec, arguments: dict[str, Any]
) -> tuple[str, dict[str, str], dict[str, str], Any]:
    url = _fill_text(spec.url, arguments, url=True)
    headers = {name: _fill_text(value, arguments) for name, value in spec.headers.items()}
    for name, value in headers.items():
        if not (value.isascii() and value.isprintable()):
            # An argument must not smuggle a line break (another header) into the request.
            raise TemplateError(f"header {name} would not be plain ASCII on one line")
    query = {}
    for name, value in spec.query.items():
        try:
            query[name] = _fill_text(value, arguments)
        except TemplateError:
            continue  # an optional argument left out: leave the parameter out too
    body = fill_body(spec.body, arguments) if spec.body is not None else None
    return url, headers, query, body


def extract(data: Any, path: str) -> Any:
    """Follow a dot path such as `orders.0.name`; a missing step gives None."""
    for step in path.split("."):
        if isinstance(data, dict):
            data = data.get(step)
        elif isinstance(data, list) and step.isdigit() and int(step) < len(data):
            data = data[int(step)]
        else:
            return None
    return data


def send(spec: RequestSpec, arguments: dict[str, Any], auth_headers: dict[str, str]) -> HttpResult:
    started = time.perf_counter()

    def result(ok: bool, status: int | None, data: Any, error: str = "") -> HttpResult:
        return HttpResult(ok, status, data, error, round((time.perf_counter() - started) * 1000, 1))

    try:
        url, headers, query, body = build(spec, arguments)
    except TemplateError as exc:
        return result(False, None, None, f"The request template cannot be filled: {exc}.")
    method = spec.method
    headers = {**headers, **auth_headers, "Accept": "application/json"}
    try:
        with httpx.Client(
            timeout=spec.timeout_seconds, follow_redirects=False, trust_env=False
        ) as client:
            for _ in range(MAX_REDIRECTS + 1):
                target, pin_headers, extensions = pin(url)
                request = client.build_request(
                    method,
                    target,
                    headers={**headers, **pin_headers},
                    params=query or None,
                    json=body if method not in ("GET", "DELETE") else None,
                    extensions=extensions,
                )
                response = client.send(request, stream=True)
                try:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        query = {}
                        if response.status_code == 303 or (
                            method == "POST" and response.status_code in (301, 302)
                        ):
                            method, body = "GET", None
                        continue
                    raw = b""
                    for piece in response.iter_bytes():
                        raw += piece
                        if len(raw) > MAX_RESPONSE_BYTES:
                            return result(
                                False, response.status_code, None, "The response is too large."
                            )
                finally:
                    response.close()
                return _interpret(result, response.status_code, raw, spec.response_mapping)
            return result(False, None, None, f"More than {MAX_REDIRECTS} redirects.")
    except BlockedDestination as exc:
        return result(False, None, None, f"Blocked: {exc}")
    except httpx.TimeoutException:
        return result(False, None, None, f"No answer within {spec.timeout_seconds:g} seconds.")
    except httpx.HTTPError as exc:
        return result(False, None, None, f"The request failed: {exc}.")


def _interpret(result: Any, status: int, raw: bytes, mapping: dict[str, str]) -> HttpResult:
    text = raw.decode("utf-8", errors="replace")
    try:
        data: Any = json.loads(text) if text.strip() else None
    except ValueError:
        data = text[:MAX_RESULT_TEXT]
    if status >= 400:
        return result(False, status, data, f"The service answered {status}.")
    if mapping and not isinstance(data, str):
        data = {name: extract(data, path) for name, path in mapping.items()}
    return result(True, status, data)
