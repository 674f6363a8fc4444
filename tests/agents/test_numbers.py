import pytest

from agents.models import PhoneNumber
from tenants.models import Tenant
from tests.conftest import TenantWorld
from tests.fakes.twilio import FakeTwilio

pytestmark = pytest.mark.django_db


def buy(world: TenantWorld, account: str, number: str, key: str = "k1", **extra):
    return world.client.post(
        "/v1/phone-numbers",
        {"carrier_account": account, "phone_number": number, **extra},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


class TestSandbox:
    def test_search_buy_assign_release(self, world: TenantWorld) -> None:
        account = world.carrier_account.public_id
        found = world.client.get(
            f"/v1/phone-numbers/available?carrier_account={account}&area_code=312&limit=3"
        ).json()
        assert [n["phone_number"] for n in found] == [
            "+13125550100",
            "+13125550101",
            "+13125550102",
        ]

        bought = buy(world, account, found[0]["phone_number"], agent=world.agent.public_id)
        assert bought.status_code == 201, bought.content
        number = bought.json()
        assert (number["carrier"], number["agent"], number["status"]) == (
            "sandbox",
            world.agent.public_id,
            "active",
        )

        after = world.client.get(
            f"/v1/phone-numbers/available?carrier_account={account}&area_code=312&limit=1"
        ).json()
        assert after[0]["phone_number"] == "+13125550101"  # an issued number is not offered again

        assert (
            world.client.patch(
                f"/v1/phone-numbers/{number['id']}", {"agent": None}, format="json"
            ).json()["agent"]
            is None
        )
        released = world.client.post(f"/v1/phone-numbers/{number['id']}/release").json()
        assert (released["status"], released["agent"]) == ("released", None)
        again = buy(world, account, found[0]["phone_number"], key="k2")  # free to buy again
        assert again.status_code == 201

    def test_a_purchase_needs_an_idempotency_key(self, world: TenantWorld) -> None:
        response = world.client.post(
            "/v1/phone-numbers",
            {"carrier_account": world.carrier_account.public_id, "phone_number": "+13125550150"},
            format="json",
        )
        assert response.status_code == 400
        assert response.json()["code"] == "idempotency_key_required"
        assert not PhoneNumber.objects.for_tenant(world.tenant).filter(e164="+13125550150").exists()

    def test_a_retried_purchase_buys_once(self, world: TenantWorld) -> None:
        account = world.carrier_account.public_id
        first = buy(world, account, "+13125550150", key="once")
        second = buy(world, account, "+13125550150", key="once")
        assert second.json() == first.json()
        assert second["Idempotent-Replayed"] == "true"
        assert PhoneNumber.objects.for_tenant(world.tenant).filter(e164="+13125550150").count() == 1

    def test_a_number_in_use_elsewhere_cannot_be_bought(
        self, world: TenantWorld, other_world: TenantWorld
    ) -> None:
        response = buy(other_world, other_world.carrier_account.public_id, world.phone_number.e164)
        assert response.status_code == 409
        assert response.json()["code"] == "number_taken"

    def test_limits_and_formats(self, world: TenantWorld) -> None:
        account = world.carrier_account.public_id
        assert buy(world, account, "4155550123").json()["errors"][0]["field"] == "phone_number"
        assert buy(world, account, "+14155551234", key="k3").json()["code"] == "carrier_error"
        Tenant.objects.filter(pk=world.tenant.pk).update(max_phone_numbers=1)
        full = buy(world, account, "+13125550160", key="k4")
        assert (full.status_code, full.json()["code"]) == (400, "limit_exceeded")


class TestTwilio:
    def test_search_and_buy_point_the_number_here(
        self, world: TenantWorld, fake_twilio: FakeTwilio, settings
    ) -> None:
        settings.PUBLIC_BASE_URL = "https://switchboard.example.com"
        fake_twilio.for_sale.update(
            {"+14155550171": ("San Francisco", "CA"), "+12125550172": ("New York", "NY")}
        )
        account = world.twilio_account.public_id
        found = world.client.get(
            f"/v1/phone-numbers/available?carrier_account={account}&area_code=415"
        ).json()
        assert [(n["phone_number"], n["locality"]) for n in found] == [
            ("+14155550171", "San Francisco")
        ]
        search = fake_twilio.requests[-1]
        assert search.query["AreaCode"] == ["415"]
        assert search.query["VoiceEnabled"] == ["true"]

        number = buy(world, account, "+14155550171", key="tw1", friendly_name="Main line").json()
        assert number["carrier"] == "twilio"
        assert number["carrier_sid"].startswith("PN")
        owned = fake_twilio.owned[number["carrier_sid"]]
        assert owned.voice_url == "https://switchboard.example.com/carriers/twilio/voice"
        assert owned.status_callback == "https://switchboard.example.com/carriers/twilio/status"
        assert owned.friendly_name == "Main line"

        world.client.post(f"/v1/phone-numbers/{number['id']}/release")
        assert number["carrier_sid"] not in fake_twilio.owned

    def test_a_number_already_owned_is_adopted_not_bought_again(
        self, world: TenantWorld, fake_twilio: FakeTwilio
    ) -> None:
        # As when a purchase went through at Twilio but the request died before recording it.
        owned = fake_twilio.add_owned("+16285550199")
        response = buy(
            world, world.twilio_account.public_id, "+16285550199", key="retry-after-crash"
        )
        assert response.status_code == 201
        assert response.json()["carrier_sid"] == owned.sid
        purchases = [
            r
            for r in fake_twilio.requests
            if r.method == "POST" and r.path.endswith("IncomingPhoneNumbers.json")
        ]
        assert not [r for r in purchases if "16285550199" in r.body.decode()]

    def test_import_an_existing_number(self, world: TenantWorld, fake_twilio: FakeTwilio) -> None:
        owned = fake_twilio.add_owned("+16285550188")
        response = world.client.post(
            "/v1/phone-numbers/import",
            {"carrier_account": world.twilio_account.public_id, "phone_number": "+16285550188"},
            format="json",
        )
        assert response.status_code == 201
        assert fake_twilio.owned[owned.sid].voice_url.endswith("/carriers/twilio/voice")
        absent = world.client.post(
            "/v1/phone-numbers/import",
            {"carrier_account": world.twilio_account.public_id, "phone_number": "+16285550111"},
            format="json",
        )
        assert (absent.status_code, absent.json()["code"]) == (404, "number_not_found")

    def test_twilio_refusals_are_explained(
        self, world: TenantWorld, fake_twilio: FakeTwilio
    ) -> None:
        response = buy(world, world.twilio_account.public_id, "+14155550999", key="tw-x")
        assert response.status_code == 502
        assert response.json()["code"] == "carrier_error"
        assert "is not available" in response.json()["detail"]
        assert not PhoneNumber.objects.for_tenant(world.tenant).filter(e164="+14155550999").exists()

    def test_wrong_credentials(self, world: TenantWorld) -> None:
        world.client.patch(
            f"/v1/carrier-accounts/{world.twilio_account.public_id}",
            {"secrets": {"auth_token": "wrong"}},
            format="json",
        )
        response = world.client.get(
            f"/v1/phone-numbers/available?carrier_account={world.twilio_account.public_id}"
        )
        assert response.status_code == 502
        assert "Authenticate" in response.json()["detail"]

    def test_twilio_credentials_are_checked_and_write_only(self, world: TenantWorld) -> None:
        bad = world.client.post(
            "/v1/carrier-accounts",
            {"kind": "twilio", "name": "T", "config": {"account_sid": "x"}},
            format="json",
        )
        assert {e["field"] for e in bad.json()["errors"]} == {
            "config.account_sid",
            "secrets.auth_token",
        }
        shown = world.client.get(f"/v1/carrier-accounts/{world.twilio_account.public_id}").json()
        assert shown["secrets_set"] == ["auth_token"]
        assert "fake-twilio-auth-token" not in str(shown)


class TestOpenAISip:
    def test_an_account_takes_a_project_key_and_webhook_secret(self, world: TenantWorld) -> None:
        bad = world.client.post(
            "/v1/carrier-accounts",
            {"kind": "openai_sip", "name": "SIP", "secrets": {"api_key": "nope"}},
            format="json",
        )
        assert bad.status_code == 400
        assert {e["field"] for e in bad.json()["errors"]} == {
            "secrets.api_key",
            "secrets.webhook_secret",
        }
        created = world.client.post(
            "/v1/carrier-accounts",
            {
                "kind": "openai_sip",
                "name": "SIP",
                "secrets": {"api_key": "sk-proj-secret", "webhook_secret": "whsec_c2VjcmV0"},
            },
            format="json",
        )
        assert created.status_code == 201, created.content
        assert created.json()["secrets_set"] == ["api_key", "webhook_secret"]
        assert "sk-proj-secret" not in created.content.decode()

    def test_trunk_numbers_are_imported_not_bought(self, world: TenantWorld) -> None:
        account = world.client.post(
            "/v1/carrier-accounts",
            {
                "kind": "openai_sip",
                "name": "SIP",
                "secrets": {"api_key": "sk-proj-secret", "webhook_secret": "whsec_c2VjcmV0"},
            },
            format="json",
        ).json()["id"]
        bought = buy(world, account, "+14155550177", key="sip-1")
        searched = world.client.get(f"/v1/phone-numbers/available?carrier_account={account}")
        for refused in (bought, searched):
            assert refused.status_code == 400
            assert refused.json()["errors"][0]["field"] == "carrier_account"
            assert "import them instead" in refused.json()["errors"][0]["message"]
        assert not PhoneNumber.objects.for_tenant(world.tenant).filter(e164="+14155550177").exists()
        imported = world.client.post(
            "/v1/phone-numbers/import",
            {
                "carrier_account": account,
                "phone_number": "+14155550177",
                "agent": world.agent.public_id,
            },
            format="json",
        )
        assert imported.status_code == 201, imported.content
        assert (imported.json()["carrier"], imported.json()["agent"]) == (
            "openai_sip",
            world.agent.public_id,
        )
