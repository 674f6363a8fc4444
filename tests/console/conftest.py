from typing import Any

from django.test import Client

from tenants.roles import Role
from tests import factories
from tests.conftest import TenantWorld, verified_login


def member_client(world: TenantWorld, role: str = Role.OWNER) -> Client:
    """A browser-like client signed in (password and TOTP) as a member of `world` with `role`."""
    membership = (
        world.owner
        if role == Role.OWNER
        else factories.MembershipFactory(tenant=world.tenant, role=role)
    )
    client = Client()
    verified_login(client, membership.user)
    return client


def text(response: Any) -> str:
    return response.content.decode()
