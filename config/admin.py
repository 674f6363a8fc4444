from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django_otp.admin import OTPAdminSite


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

    def login(self, request: HttpRequest, extra_context: object = None) -> HttpResponse:
        return redirect_to_login(
            request.GET.get("next") or reverse("admin:index"), reverse("accounts:login")
        )
