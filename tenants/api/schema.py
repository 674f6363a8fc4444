"""OpenAPI schema generation: every operation documents its problem-details error responses and,
for POST, the Idempotency-Key header."""

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from tenants.api.problems import PROBLEM_CONTENT_TYPE
from tenants.idempotency import MAX_KEY_LENGTH


class ProblemFieldErrorSerializer(serializers.Serializer[Any]):
    field = serializers.CharField()
    code = serializers.CharField()
    message = serializers.CharField()


class ProblemSerializer(serializers.Serializer[Any]):
    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    instance = serializers.CharField()
    code = serializers.CharField(help_text="Stable machine-readable error code.")
    request_id = serializers.CharField()
    # Declared fields leave the class namespace, so this does not shadow Serializer.errors.
    errors = ProblemFieldErrorSerializer(many=True, required=False)  # type: ignore[assignment]


ERROR_DESCRIPTIONS = {
    "400": "Invalid input; `errors` lists each field.",
    "401": "Missing, malformed, revoked or expired credentials.",
    "403": "The credential lacks the permission for this action.",
    "404": "No such object in this tenant.",
    "409": "The request conflicts with the current state (e.g. the object is in use), or a "
    "request with the same Idempotency-Key is still running.",
    "422": "The Idempotency-Key was used with a different request.",
    "429": "Rate limit exceeded; see Retry-After.",
}


def idempotency_key_parameter(*, required: bool = False) -> OpenApiParameter:
    """The Idempotency-Key header; an operation that cannot do without it declares it required."""
    return OpenApiParameter(
        "Idempotency-Key",
        # What tenants.idempotency accepts: 1 to 255 printable ASCII characters (a header's
        # value cannot start or end with a space).
        {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
        OpenApiParameter.HEADER,
        required=required,
        pattern="^[!-~]([ -~]*[!-~])?$",
        description="Makes the request safe to retry: a repeat with the same key "
        "and body returns the first response instead of acting twice.",
    )


class AutoSchema(SpectacularAutoSchema):
    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        declared = {p.name for p in parameters if isinstance(p, OpenApiParameter)}
        if self.method == "POST" and "Idempotency-Key" not in declared:
            parameters.append(idempotency_key_parameter())
        return parameters

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        codes = ["400", "401", "403", "429"]
        if "{" in self.path:
            codes.append("404")
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            codes.append("409")
        if self.method == "POST":
            codes.append("422")
        for code in codes:
            if code not in responses:
                response = self._get_response_for_code(
                    ProblemSerializer, code, [PROBLEM_CONTENT_TYPE], direction
                )
                response["description"] = ERROR_DESCRIPTIONS[code]
                responses[code] = response
        return dict(sorted(responses.items()))
