"""Errors services raise. The API turns them into problem details; the web UI into messages."""

import math
from collections.abc import Mapping
from datetime import datetime


class ServiceError(Exception):
    status = 400
    code = "invalid"
    title = "Bad Request"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code


class InvalidInput(ServiceError):
    """One or more fields are wrong; `errors` maps each field to its messages."""

    def __init__(
        self, detail: str, *, errors: Mapping[str, list[str]] | None = None, code: str | None = None
    ) -> None:
        super().__init__(detail, code=code)
        self.errors = dict(errors or {})

    @classmethod
    def field(cls, field: str, message: str, *, code: str | None = None) -> "InvalidInput":
        return cls(message, errors={field: [message]}, code=code)


class Forbidden(ServiceError):
    status = 403
    code = "permission_denied"
    title = "Forbidden"


class NotFound(ServiceError):
    status = 404
    code = "not_found"
    title = "Not Found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"
    title = "Conflict"


class Unprocessable(ServiceError):
    status = 422
    code = "unprocessable"
    title = "Unprocessable Content"


class Unavailable(ServiceError):
    """Something the request needs is down for now (Redis restarting); the same request can be
    made again shortly."""

    status = 503
    code = "temporarily_unavailable"
    title = "Service Unavailable"


class TooManyRequests(ServiceError):
    """A limit on a paid resource (number purchases a day, outbound calls a minute) is used up.

    `limit` is the allowance; `resets_at` is when the next request fits (None: the limit is zero,
    so it never does). The API answers 429 with `Retry-After`; pages show `detail`.
    """

    status = 429
    code = "limit_reached"
    title = "Too Many Requests"

    def __init__(
        self, detail: str, *, limit: int, resets_at: datetime | None, code: str | None = None
    ) -> None:
        super().__init__(detail, code=code)
        self.limit = limit
        self.resets_at = resets_at

    def retry_after(self, now: datetime) -> int | None:
        """Whole seconds until `resets_at`, at least 1; None when it never resets."""
        if self.resets_at is None:
            return None
        return max(math.ceil((self.resets_at - now).total_seconds()), 1)
