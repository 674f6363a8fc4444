"""Sign-in (password, then TOTP, with enrolment on first sign-in), invitations, tenant switch.

These pages serve everyone: tenants' members and platform operators alike.
"""

import time
from typing import Any

from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.decorators import otp_required

from tenants import services, twofactor
from tenants.access import ACTIVE_TENANT_SESSION_KEY, Actor, active_membership, memberships_of
from tenants.errors import ServiceError
from tenants.forms import LoginForm, RecoveryCodeForm, SignupForm, TokenForm
from tenants.models import User
from tenants.rls import tenant_context

PENDING_KEY = "pending_sign_in"
PENDING_TTL = 10 * 60  # seconds between the password step and the code step


def _safe_next(request: HttpRequest, candidate: str | None) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("home")


def _start_pending(request: HttpRequest, user: User, next_url: str) -> None:
    request.session[PENDING_KEY] = {"user": user.pk, "at": time.time(), "next": next_url}


def _pending_user(request: HttpRequest) -> tuple[User, str] | None:
    pending = request.session.get(PENDING_KEY)
    if not pending or time.time() - pending["at"] > PENDING_TTL:
        request.session.pop(PENDING_KEY, None)
        return None
    user = User.objects.filter(pk=pending["user"], is_active=True).first()
    return (user, pending["next"]) if user else None


def _finish_sign_in(request: HttpRequest, user: User, device: Any, next_url: str) -> HttpResponse:
    request.session.pop(PENDING_KEY, None)
    auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    otp_login(request, device)
    return HttpResponseRedirect(next_url)


@sensitive_post_parameters("password")
def login_view(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request, request.POST.get("next") or request.GET.get("next"))
    if request.user.is_authenticated and twofactor.is_verified(request.user):
        return HttpResponseRedirect(next_url)
    form = LoginForm(request, data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        assert form.user is not None
        _start_pending(request, form.user, next_url)
        if twofactor.confirmed_device(form.user):
            return redirect("accounts:verify")
        return redirect("accounts:enroll")
    return render(request, "accounts/login.html", {"form": form, "next": next_url})


def verify_view(request: HttpRequest) -> HttpResponse:
    """The second step: the app's current code or, with `?recovery`, a single-use recovery code."""
    pending = _pending_user(request)
    if pending is None:
        messages.info(request, "Sign in again: the sign-in took too long.")
        return redirect("accounts:login")
    user, next_url = pending
    device = twofactor.confirmed_device(user)
    if device is None:
        return redirect("accounts:enroll")
    if "recovery" in request.GET:
        return _verify_with_recovery_code(request, user, next_url)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["token"]):
            return _finish_sign_in(request, user, device, next_url)
        form.add_error("token", "That code is not right, or it expired. Try the current one.")
    return render(request, "accounts/verify.html", {"form": form, "email": user.email})


def _verify_with_recovery_code(request: HttpRequest, user: User, next_url: str) -> HttpResponse:
    form = RecoveryCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        membership = active_membership(user, request.session.get(ACTIVE_TENANT_SESSION_KEY))
        actor = (
            Actor.for_membership(
                membership,
                ip_address=request.META.get("REMOTE_ADDR") or None,
                request_id=getattr(request, "request_id", ""),
            )
            if membership
            else None
        )
        device = twofactor.recovery_code_use(user, form.cleaned_data["code"], actor=actor)
        if device is not None:
            remaining = twofactor.recovery_codes_remaining(user)
            messages.warning(
                request,
                f"You signed in with a recovery code; {remaining} unused code(s) remain. "
                "Set up your authenticator again or generate new codes in Settings.",
            )
            return _finish_sign_in(request, user, device, next_url)
        form.add_error("code", "That recovery code is not right, or it was used already.")
    return render(request, "accounts/verify_recovery.html", {"form": form, "email": user.email})


def enroll_view(request: HttpRequest) -> HttpResponse:
    """First sign-in: add an authenticator app. Only for an account that has none yet."""
    pending = _pending_user(request)
    if pending is None:
        return redirect("accounts:login")
    user, next_url = pending
    if twofactor.confirmed_device(user):
        return redirect("accounts:verify")
    device = twofactor.pending_device(user)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if twofactor.device_confirm(device, form.cleaned_data["token"]):
            messages.success(request, "Two-factor authentication is on for your account.")
            return _finish_sign_in(request, user, device, next_url)
        form.add_error("token", "That code does not match. Check the app and try the new code.")
    context = {
        "form": form,
        "email": user.email,
        "qr_svg": twofactor.qr_svg(device.config_url),
        "manual_key": twofactor.manual_key(device),
    }
    return render(request, "accounts/enroll.html", context)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    auth_logout(request)
    messages.info(request, "You are signed out.")
    return redirect("accounts:login")


@require_POST
@otp_required(login_url="accounts:login")
def switch_tenant_view(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    wanted = request.POST.get("tenant", "")
    membership = next(
        (m for m in memberships_of(request.user) if m.tenant.public_id == wanted), None
    )
    if membership is None:
        messages.error(request, "You are not a member of that tenant.")
    else:
        request.session[ACTIVE_TENANT_SESSION_KEY] = membership.tenant.public_id
        messages.success(request, f"You are now working in {membership.tenant.name}.")
    return redirect(_safe_next(request, request.POST.get("next")))


@sensitive_post_parameters("password", "password_again")
def invitation_view(request: HttpRequest, token: str) -> HttpResponse:
    invitation = services.invitation_for_token(token)
    context: dict[str, Any] = {"invitation": invitation, "token": token}
    if invitation is None or invitation.is_expired:
        return render(request, "accounts/invitation.html", context, status=404)

    user = request.user
    if user.is_authenticated and twofactor.is_verified(user):
        assert isinstance(user, User)
        if request.method == "POST":
            actor = Actor(
                kind="user",
                public_id=user.public_id,
                label=user.email,
                user=user,
                ip_address=request.META.get("REMOTE_ADDR"),
                request_id=getattr(request, "request_id", ""),
            )
            try:
                with tenant_context(invitation.tenant):
                    membership = services.invitation_accept(
                        invitation=invitation, user=user, actor=actor
                    )
            except ServiceError as exc:
                messages.error(request, exc.detail)
                return redirect("home")
            request.session[ACTIVE_TENANT_SESSION_KEY] = membership.tenant.public_id
            messages.success(request, f"Welcome to {membership.tenant.name}.")
            return redirect("home")
        context["mismatch"] = user.email.lower() != invitation.email.lower()
        return render(request, "accounts/invitation.html", context)

    if User.objects.filter(email__iexact=invitation.email).exists():
        context["sign_in_url"] = f"{reverse('accounts:login')}?next={request.path}"
        return render(request, "accounts/invitation.html", context)

    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            new_user = services.user_register(
                email=invitation.email,
                name=form.cleaned_data["name"],
                password=form.cleaned_data["password"],
            )
        except ServiceError as exc:
            for field, errors in getattr(exc, "errors", {}).items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
            if not getattr(exc, "errors", None):
                form.add_error(None, exc.detail)
        else:
            _start_pending(request, new_user, request.path)
            return redirect("accounts:enroll")
    context["form"] = form
    return render(request, "accounts/invitation.html", context)
