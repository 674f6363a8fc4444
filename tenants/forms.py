from typing import Any

from django import forms
from django.contrib.auth import authenticate
from django.http import HttpRequest

from tenants import ratelimit
from tenants.models import User

ATTEMPTS_PER_EMAIL = 10
ATTEMPTS_PER_IP = 50
ATTEMPT_WINDOW = 15 * 60


class LoginForm(forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "username"}))
    password = forms.CharField(
        strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        self.user: User | None = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        email, password = cleaned.get("email"), cleaned.get("password")
        if not email or not password:
            return cleaned
        ip = self.request.META.get("REMOTE_ADDR", "")
        wait = ratelimit.hit(
            f"login:email:{email.lower()}", ATTEMPTS_PER_EMAIL, ATTEMPT_WINDOW
        ) or ratelimit.hit(f"login:ip:{ip}", ATTEMPTS_PER_IP, ATTEMPT_WINDOW)
        if wait is not None:
            minutes = max(1, round(wait / 60))
            raise forms.ValidationError(
                f"Too many sign-in attempts. Try again in {minutes} minute(s)."
            )
        user = authenticate(self.request, username=email, password=password)
        if user is None:
            raise forms.ValidationError("That email and password do not match an account.")
        assert isinstance(user, User)
        self.user = user
        return cleaned


class TokenForm(forms.Form):
    token = forms.RegexField(
        regex=r"^\d{6}$",
        error_messages={"invalid": "Enter the 6-digit code from your authenticator app."},
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
        label="6-digit code",
    )


class RecoveryCodeForm(forms.Form):
    """The sign-in step's alternative to the app's code: one of the user's recovery codes."""

    code = forms.CharField(
        max_length=32,
        label="Recovery code",
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}
        ),
    )


class SignupForm(forms.Form):
    name = forms.CharField(max_length=200, required=False)
    password = forms.CharField(
        strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    password_again = forms.CharField(
        strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("password") != cleaned.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        return cleaned
