import random
from collections import Counter

import pytest

from agents.models import Agent, AgentVersion
from agents.selectors import active_number, pick_version, traffic_split, version_for_call
from tests.conftest import TenantWorld
from tests.factories import PhoneNumberFactory, published_version

pytestmark = pytest.mark.django_db


def callers(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [f"+1{rng.randint(200, 999)}{rng.randint(1_000_000, 9_999_999)}" for _ in range(count)]


def set_split(world: TenantWorld, weights: list[tuple[AgentVersion, int]]) -> None:
    response = world.client.put(
        f"/v1/agents/{world.agent.public_id}/traffic-split",
        {"allocations": [{"version": v.public_id, "weight": w} for v, w in weights]},
        format="json",
    )
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("weights", [[90, 10], [50, 30, 20]])
def test_ten_thousand_callers_land_within_two_points_of_the_weights(
    world: TenantWorld, weights: list[int]
) -> None:
    versions = [world.published_version] + [
        published_version(agent=world.agent) for _ in weights[1:]
    ]
    set_split(world, list(zip(versions, weights, strict=True)))
    number = active_number(world.phone_number.e164)
    assert number is not None and number.agent is not None
    # The split is read once; each caller is then dealt exactly as version_for_call deals them.
    split = traffic_split(number.agent)
    counts = Counter(
        pick_version(split, number.agent.split_seed, caller).pk for caller in callers(10_000)
    )
    assert all(
        version_for_call(number, c) == pick_version(split, number.agent.split_seed, c)
        for c in callers(50)
    )
    for version, weight in zip(versions, weights, strict=True):
        share = counts[version.pk] / 100
        assert abs(share - weight) <= 2, (weight, share)


def test_a_caller_keeps_their_version_while_the_split_stands(world: TenantWorld) -> None:
    other = published_version(agent=world.agent)
    set_split(world, [(world.published_version, 50), (other, 50)])
    number = active_number(world.phone_number.e164)
    first = {caller: version_for_call(number, caller) for caller in callers(200)}
    again = {caller: version_for_call(number, caller) for caller in callers(200)}
    assert first == again

    set_split(world, [(world.published_version, 50), (other, 50)])  # a new split deals afresh
    number = active_number(world.phone_number.e164)
    reshuffled = {caller: version_for_call(number, caller) for caller in callers(200)}
    assert reshuffled != first


def test_no_version_without_an_active_agent(world: TenantWorld) -> None:
    unassigned = PhoneNumberFactory(carrier_account=world.carrier_account)
    assert version_for_call(unassigned, "+14155550000") is None
    Agent.objects.for_tenant(world.tenant).filter(pk=world.agent.pk).update(status="archived")
    assert version_for_call(active_number(world.phone_number.e164), "+14155550000") is None


def test_a_released_number_routes_nowhere(world: TenantWorld) -> None:
    world.client.post(f"/v1/phone-numbers/{world.phone_number.public_id}/release")
    assert active_number(world.phone_number.e164) is None
