"""Errors services raise. The API turns them into problem details; the web UI into messages."""

from collections.abc import Mapping


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
