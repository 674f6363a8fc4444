"""TOTP devices (django-otp): enrolment, QR codes for authenticator apps."""

import io
from base64 import b32encode

import qrcode
import qrcode.image.svg
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenants.models import User

DEVICE_NAME = "Authenticator app"


def is_verified(user: object) -> bool:
    """Whether this request's user passed two-factor verification (django-otp's middleware)."""
    check = getattr(user, "is_verified", None)
    return bool(check and check())


def confirmed_device(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


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
