from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.db import transaction
from django.urls import reverse

from tenants import services
from tenants.access import Actor
from tenants.errors import ServiceError
from tenants.management.operator import OperatorCommand
from tenants.models import User
from tenants.roles import Role


class Command(OperatorCommand):
    help = (
        "Create a tenant with its first owner. An existing user becomes owner at once; "
        "a new address gets an invitation link (printed here and emailed)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="Display name, e.g. 'Acme Dental'")
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--slug", default="", help="URL-safe short name (default: from name)")

    def handle(self, *args: Any, name: str, owner_email: str, slug: str, **options: Any) -> None:
        actor = Actor.system("manage.py create_tenant")
        try:
            with transaction.atomic():
                tenant = services.tenant_create(actor=actor, name=name, slug=slug)
                owner = User.objects.filter(email__iexact=owner_email).first()
                if owner is not None:
                    services.membership_add(tenant=tenant, user=owner, role=Role.OWNER, actor=actor)
                    invite_url = ""
                else:
                    _, token = services.invitation_create(
                        tenant=tenant, actor=actor, email=owner_email, role=Role.OWNER
                    )
                    invite_url = settings.PUBLIC_BASE_URL + reverse(
                        "accounts:invitation", args=[token]
                    )
        except ServiceError as exc:
            raise CommandError(exc.detail) from None

        self.stdout.write(f"Created tenant {tenant.name} ({tenant.public_id}, slug {tenant.slug}).")
        if invite_url:
            self.stdout.write(f"{owner_email} is invited as owner. The link (also emailed):")
            self.stdout.write(f"  {invite_url}")
        else:
            self.stdout.write(f"{owner_email} is its owner.")
