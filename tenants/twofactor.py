"""Two-factor devices (django-otp): TOTP enrolment and replacement, QR codes for authenticator
apps, and single-use recovery codes for when the app is out of reach."""

import io
from base64 import b32encode

import qrcode
import qrcode.image.svg
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenants.access import Actor
from tenants.models import User
from tenants.rls import tenant_context
from tenants.services import audit_event_record

DEVICE_NAME = "Authenticator app"
RECOVERY_DEVICE_NAME = "Recovery codes"
RECOVERY_CODE_COUNT = 10


def is_verified(user: object) -> bool:
    """Whether this request's user passed two-factor verification (django-otp's middleware)."""
    check = getattr(user, "is_verified", None)
    return bool(check and check())


def confirmed_device(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def authenticators(user: User) -> list[TOTPDevice]:
    """The user's confirmed authenticator apps (normally one)."""
    return list(TOTPDevice.objects.filter(user=user, confirmed=True).order_by("created_at", "pk"))


def pending_device(user: User) -> TOTPDevice:
    """The unconfirmed device a user is enrolling; created on first use, reused on reload."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)


def device_replace(user: User) -> TOTPDevice:
    """A new confirmed device for `user`, replacing any they had (operator enrolment)."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        return TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=True)


def device_confirm(device: TOTPDevice, token: str) -> bool:
    """Confirm an enrolling device with a code from the app; other pending devices are dropped."""
    if not device.verify_token(token):
        return False
    with transaction.atomic():
        TOTPDevice.objects.filter(user=device.user, confirmed=False).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
    return True


def device_replace_confirm(device: TOTPDevice, token: str, *, actor: Actor | None = None) -> bool:
    """Confirm a new authenticator with a code from it, and only then drop every other one, so a
    half-finished setup never locks the user out."""
    if not device.verify_token(token):
        return False
    with transaction.atomic():
        TOTPDevice.objects.filter(user=device.user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        _audit(actor, "authenticator.replace")
    return True


# --- Recovery codes ---------------------------------------------------------------------------


def _normalized(code: str) -> str:
    # People copy codes with the hyphen we print, spaces or capitals; none of them matter.
    return "".join(code.split()).replace("-", "").lower()


def recovery_code_display(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def recovery_device(user: User) -> StaticDevice | None:
    return StaticDevice.objects.filter(user=user, confirmed=True).first()


def recovery_codes_remaining(user: User) -> int:
    device = recovery_device(user)
    return device.token_set.count() if device else 0


def recovery_codes_generate(
    user: User, *, actor: Actor | None = None
) -> tuple[StaticDevice, list[str]]:
    """A new set of single-use codes, replacing any earlier set. The codes are returned for
    showing once; afterwards only how many remain unused is known to the user."""
    codes: set[str] = set()
    while len(codes) < RECOVERY_CODE_COUNT:
        codes.add(StaticToken.random_token())
    with transaction.atomic():
        StaticDevice.objects.filter(user=user).delete()
        device = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE_NAME, confirmed=True)
        StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in sorted(codes))
        _audit(actor, "recovery_codes.generate")
    return device, [recovery_code_display(c) for c in sorted(codes)]


def recovery_code_use(user: User, code: str, *, actor: Actor | None = None) -> StaticDevice | None:
    """Consume one recovery code; the device it belongs to, or None when it is wrong, used
    already, or the user is throttled after failed tries."""
    device = recovery_device(user)
    if device is None:
        return None
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        return None
    # Deleting is the check: of two requests presenting the same code, only one deletes it.
    deleted, _ = device.token_set.filter(token=_normalized(code)).delete()
    if not deleted:
        device.throttle_increment()
        return None
    device.throttle_reset(commit=False)
    device.set_last_used_timestamp(commit=False)
    device.save()
    _audit(actor, "recovery_code.use")
    return device


def _audit(actor: Actor | None, action: str) -> None:
    """Two-factor changes belong to a person, not a tenant: they are recorded in the tenant the
    person is acting in, when there is one."""
    if actor is not None and actor.membership is not None:
        with tenant_context(actor.membership.tenant_id):
            audit_event_record(actor=actor, action=action, target=actor.membership)


def manual_key(device: TOTPDevice) -> str:
    """The secret as authenticator apps accept it when typed: base32, in groups of four."""
    raw = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def qr_svg(uri: str) -> str:
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return str(image.to_string(encoding="unicode"))


def qr_text(uri: str) -> str:
    """The QR code drawn with block characters, for a terminal."""
    code = qrcode.QRCode(border=2)
    code.add_data(uri)
    out = io.StringIO()
    code.print_ascii(out=out, invert=True)
    return out.getvalue()
