import importlib.util
import secrets
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.base import CommandParser
from django.db import transaction

from tenants import services, twofactor
from tenants.access import Actor
from tenants.management.operator import OperatorCommand
from tenants.models import Tenant, User
from tenants.roles import Role

DEMO_SLUG = "demo"
DEMO_EMAIL = "owner@demo.example"


def populate_apps(*, tenant: Tenant, actor: Actor) -> list[str]:
    """Each installed app may ship a `demo` module whose populate(tenant=, actor=) adds its part
    of the demo and returns lines describing it; apps run in INSTALLED_APPS order, so an app
    can build on what the apps before it created."""
    lines: list[str] = []
    for config in apps.get_app_configs():
        module_name = f"{config.name}.demo"
        if importlib.util.find_spec(module_name) is not None:
            lines += importlib.import_module(module_name).populate(tenant=tenant, actor=actor)
    return lines


class Command(OperatorCommand):
    help = (
        "Load the demo tenant once: a tenant and its owner (also a platform operator). "
        "The owner's password and TOTP set-up are printed only when they are created."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset-credentials",
            action="store_true",
            help="Give the demo owner a new password and TOTP device, and print them",
        )

    def handle(self, *args: Any, reset_credentials: bool, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
        owner = User.objects.filter(email__iexact=DEMO_EMAIL).first()
        if tenant is not None and owner is not None and not reset_credentials:
            self.stdout.write(
                f"Demo tenant already loaded. Sign in at {settings.PUBLIC_BASE_URL}/ as "
                f"{DEMO_EMAIL} (password printed when it was created; "
                "`manage.py load_demo --reset-credentials` prints new ones)."
            )
            return

        password = secrets.token_urlsafe(12)
        with transaction.atomic():
            actor = Actor.system("manage.py load_demo")
            created = tenant is None
            if tenant is None:
                tenant = services.tenant_create(actor=actor, name="Demo Company", slug=DEMO_SLUG)
            if owner is None:
                owner = User.objects.create_superuser(DEMO_EMAIL, password, name="Demo Owner")
            else:
                owner.set_password(password)
                owner.save(update_fields=["password"])
            services.membership_add(tenant=tenant, user=owner, role=Role.OWNER, actor=actor)
            device = twofactor.device_replace(owner)
            if created:
                populated = populate_apps(tenant=tenant, actor=actor)

        self.stdout.write(self.style.SUCCESS("Demo tenant loaded. These are printed only now:"))
        self.stdout.write(f"  sign in at  {settings.PUBLIC_BASE_URL}/accounts/login/")
        self.stdout.write(f"  email       {DEMO_EMAIL}")
        self.stdout.write(f"  password    {password}")
        self.stdout.write(
            "  TOTP        scan the QR code, or add this URI / key to an authenticator app:"
        )
        self.stdout.write(f"              {device.config_url}")
        self.stdout.write(f"              key: {twofactor.manual_key(device)}")
        self.stdout.write(twofactor.qr_text(device.config_url))
        if created:
            self.stdout.write("In the demo tenant:")
            for line in populated:
                self.stdout.write(f"  {line}")
