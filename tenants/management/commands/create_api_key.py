from datetime import timedelta
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from tenants import services
from tenants.access import Actor
from tenants.errors import ServiceError
from tenants.management.operator import OperatorCommand
from tenants.models import Tenant
from tenants.roles import MATRIX


class Command(OperatorCommand):
    help = "Create an API key for a tenant and print it. The key is shown only this once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="The tenant's slug or ten_… id")
        parser.add_argument(
            "--scopes",
            default="",
            help="Comma-separated, e.g. 'members:read,api_keys:write' (default: every scope). "
            f"Known: {', '.join(sorted(MATRIX.key_scopes))}",
        )
        parser.add_argument("--name", default="Created with manage.py")
        parser.add_argument("--expires-in-days", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = (
            Tenant.objects.filter(slug=options["tenant"]).first()
            or Tenant.objects.filter(public_id=options["tenant"]).first()
        )
        if tenant is None:
            raise CommandError(f"No tenant with slug or id {options['tenant']!r}.")
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()] or sorted(
            MATRIX.key_scopes
        )
        days = options["expires_in_days"]
        expires_at = timezone.now() + timedelta(days=days) if days else None
        try:
            api_key, secret = services.api_key_create(
                tenant=tenant,
                actor=Actor.system("manage.py create_api_key"),
                name=options["name"],
                scopes=scopes,
                expires_at=expires_at,
            )
        except ServiceError as exc:
            raise CommandError(exc.detail) from None
        self.stderr.write(
            f"Created {api_key.public_id} for {tenant.name} "
            f"with scopes {', '.join(api_key.scopes)}."
        )
        self.stderr.write("Store the key now; it cannot be shown again:")
        self.stdout.write(secret)
