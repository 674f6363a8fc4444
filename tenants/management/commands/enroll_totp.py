from typing import Any

from django.core.management.base import CommandError, CommandParser

from tenants import twofactor
from tenants.management.operator import OperatorCommand
from tenants.models import User


class Command(OperatorCommand):
    help = (
        "Give a user a new TOTP device and print its otpauth:// URI and QR code, for an "
        "authenticator app. Replaces any device the user had."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--no-qr", action="store_true", help="Print only the URI")

    def handle(self, *args: Any, email: str, no_qr: bool, **options: Any) -> None:
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            raise CommandError(f"No user with email {email!r}.")
        device = twofactor.device_replace(user)
        self.stdout.write(f"TOTP device for {user.email}. Add it to an authenticator app:")
        self.stdout.write(f"  {device.config_url}")
        self.stdout.write(f"  key: {twofactor.manual_key(device)}")
        if not no_qr:
            self.stdout.write(twofactor.qr_text(device.config_url))
