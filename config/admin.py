from collections.abc import Callable
from functools import update_wrapper
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.template.response import SimpleTemplateResponse
from django.urls import reverse
from django_otp.admin import OTPAdminSite

from tenants.rls import rls_bypass


class OperatorAdminSite(OTPAdminSite):
    """Admin site for platform operators: staff users whose session was verified with TOTP.

    There is one sign-in page for everyone (accounts:login, password then TOTP), so the admin's
    own login view only sends people there; a staff user without a verified device never sees
    an admin page.
    """

    site_header = "Switchboard operations"
    site_title = "Switchboard operations"
    index_title = "Platform administration"

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)

    def admin_view(self, view: Callable[..., Any], cacheable: bool = False) -> Any:
        """Operators work across tenants by design: every admin page bypasses row-level
        security, and the log says who opened what (changes are also in the audit log)."""
        checked = super().admin_view(view, cacheable)

        def across_tenants(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            reason = f"admin: {request.method} {request.path} by {request.user}"
            with rls_bypass(reason):
                response = checked(request, *args, **kwargs)
                # Admin pages render lazily; their querysets must be read inside the bypass.
                if isinstance(response, SimpleTemplateResponse) and not response.is_rendered:
                    response.render()
                return response

        return update_wrapper(across_tenants, checked)

    def login(self, request: HttpRequest, extra_context: object = None) -> HttpResponse:
        return redirect_to_login(
            request.GET.get("next") or reverse("admin:index"), reverse("accounts:login")
        )
