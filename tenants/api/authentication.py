from typing import Any

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import (
    BaseAuthentication,
    SessionAuthentication,
    get_authorization_header,
)
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from tenants import keys, rls, twofactor
from tenants.models import ApiKey
from tenants.services import api_key_mark_used


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer sbk_…`. The key stands for its tenant, not for a user."""

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Send the key as 'Authorization: Bearer <api key>'.")
        presented = parts[1].decode("ascii", errors="replace")
        # A malformed key or a wrong checksum is refused before any database query.
        if not keys.is_well_formed(presented):
            raise AuthenticationFailed("This is not a valid API key.", code="invalid_api_key")
        with rls.tenant_lookup("API key"):
            api_key = (
                ApiKey.all_tenants.select_related("tenant")
                .filter(secret_hash=keys.hash_key(presented))
                .first()
            )
        if api_key is None:
            raise AuthenticationFailed("This API key does not exist.", code="invalid_api_key")
        if api_key.revoked_at is not None:
            raise AuthenticationFailed("This API key has been revoked.", code="revoked_api_key")
        if not api_key.is_usable():
            raise AuthenticationFailed("This API key has expired.", code="expired_api_key")
        with rls.tenant_context(api_key.tenant):
            api_key_mark_used(api_key)
        return AnonymousUser(), api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class VerifiedSessionAuthentication(SessionAuthentication):
    """The web session, accepted only once the user has passed two-factor verification."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        user = getattr(request._request, "user", None)
        if user is None or not user.is_active or not twofactor.is_verified(user):
            return None
        self.enforce_csrf(request)
        return user, None


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.api.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (`sbk_…`) created in the console, the API or with "
            "`manage.py create_api_key`.",
        }


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.api.authentication.VerifiedSessionAuthentication"
    name = "session"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
