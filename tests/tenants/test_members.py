import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tenants.models import Membership
from tenants.roles import Role
from tests.conftest import TenantWorld, verified_login
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def test_members_are_listed_with_their_users(world: TenantWorld) -> None:
    body = world.client.get("/v1/members").json()
    by_id = {m["id"]: m for m in body["results"]}
    assert by_id[world.owner.public_id]["role"] == "owner"
    assert by_id[world.owner.public_id]["user"]["email"] == world.owner.user.email
    assert set(by_id[world.owner.public_id]["user"]) == {"id", "email", "name"}


def test_filter_members_by_role(world: TenantWorld) -> None:
    ids = [m["id"] for m in world.client.get("/v1/members?role=viewer").json()["results"]]
    assert ids == [world.member.public_id]


def test_an_admin_changes_a_role(world: TenantWorld) -> None:
    response = world.session_client(Role.ADMIN).patch(
        f"/v1/members/{world.member.public_id}", {"role": "editor"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["role"] == "editor"
    assert Membership.all_tenants.get(pk=world.member.pk).role == "editor"


def test_an_unknown_role_is_refused_with_the_choices(world: TenantWorld) -> None:
    response = world.client.patch(
        f"/v1/members/{world.member.public_id}", {"role": "king"}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["field"] == "role"
    assert error["code"] == "invalid_choice"


def test_only_owners_grant_or_take_the_owner_role(world: TenantWorld) -> None:
    admin = world.session_client(Role.ADMIN)
    promote = admin.patch(f"/v1/members/{world.member.public_id}", {"role": "owner"}, format="json")
    assert promote.status_code == 403
    demote = admin.patch(f"/v1/members/{world.owner.public_id}", {"role": "viewer"}, format="json")
    assert demote.status_code == 403
    assert admin.delete(f"/v1/members/{world.owner.public_id}").status_code == 403
    # API keys never hold the owner-management permission.
    keyed = world.client.patch(
        f"/v1/members/{world.member.public_id}", {"role": "owner"}, format="json"
    )
    assert keyed.status_code == 403

    owner = world.session_client(Role.OWNER)
    ok = owner.patch(f"/v1/members/{world.member.public_id}", {"role": "owner"}, format="json")
    assert ok.status_code == 200


def test_the_last_owner_can_be_neither_removed_nor_demoted(world: TenantWorld) -> None:
    owner = world.session_client(Role.OWNER)
    removed = owner.delete(f"/v1/members/{world.owner.public_id}")
    assert removed.status_code == 409
    assert removed.json()["code"] == "last_owner"
    demoted = owner.patch(f"/v1/members/{world.owner.public_id}", {"role": "admin"}, format="json")
    assert demoted.status_code == 409
    assert Membership.all_tenants.get(pk=world.owner.pk).role == "owner"


def test_with_two_owners_one_can_leave(world: TenantWorld) -> None:
    second = MembershipFactory(tenant=world.tenant, role=Role.OWNER)
    owner = world.session_client(Role.OWNER)
    assert owner.delete(f"/v1/members/{second.public_id}").status_code == 204
    assert not Membership.all_tenants.filter(pk=second.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_two_owners_demoting_each_other_at_once_leave_one_owner(fake_twilio) -> None:
    from tests.conftest import make_world

    world = make_world("Race", fake_twilio)
    other = MembershipFactory(tenant=world.tenant, role=Role.OWNER)
    clients = []
    for membership in (world.owner, other):
        client = APIClient()
        verified_login(client, membership.user)
        clients.append(client)
    barrier = threading.Barrier(2)
    results: list[int] = []

    def demote(client: APIClient, target: Membership) -> None:
        barrier.wait()
        try:
            response = client.patch(
                f"/v1/members/{target.public_id}", {"role": "viewer"}, format="json"
            )
            results.append(response.status_code)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=demote, args=(clients[0], other)),
        threading.Thread(target=demote, args=(clients[1], world.owner)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    owners = Membership.all_tenants.filter(tenant=world.tenant, role=Role.OWNER).count()
    assert owners == 1
    assert sorted(results) in ([200, 409], [200, 403])
