"""The operator admin: a staff user without a verified TOTP device never gets an admin page."""

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from tests.conftest import verified_login
from tests.factories import TOTPDeviceFactory, UserFactory

pytestmark = pytest.mark.django_db


def admin_urls() -> list[str]:
    urls = [reverse("admin:index"), reverse("admin:login"), reverse("admin:password_change")]
    for model in admin.site._registry:
        opts = model._meta
        urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
        urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[1]))
    return urls


@pytest.mark.parametrize("with_device", [False, True], ids=["no-device", "device-not-verified"])
def test_staff_without_verified_two_factor_never_get_a_200(with_device: bool) -> None:
    staff = UserFactory(is_staff=True, is_superuser=True)
    if with_device:
        TOTPDeviceFactory(user=staff)
    client = Client()
    client.force_login(staff)  # password-only session
    for url in admin_urls():
        response = client.get(url)
        assert response.status_code != 200, url
        if response.status_code == 302:
            assert response["Location"].startswith("/accounts/login/") or response[
                "Location"
            ].startswith("/admin/login/"), url


def test_the_admin_sign_in_is_the_site_sign_in() -> None:
    response = Client().get("/admin/login/?next=/admin/tenants/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/admin/tenants/"


def test_verified_staff_see_every_model() -> None:
    staff = UserFactory(is_staff=True, is_superuser=True)
    client = verified_login(Client(), staff)
    assert client.get("/admin/").status_code == 200
    for model in admin.site._registry:
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        assert client.get(changelist).status_code == 200, changelist


def test_verified_members_who_are_not_staff_get_no_admin() -> None:
    user = UserFactory()
    client = verified_login(Client(), user)
    assert client.get("/admin/").status_code == 302


def test_operator_changes_through_the_admin_are_audited() -> None:
    from tenants.models import AuditEvent
    from tests.factories import TenantFactory

    tenant = TenantFactory(max_concurrent_calls=10)
    staff = UserFactory(is_staff=True, is_superuser=True)
    client = verified_login(Client(), staff)
    url = reverse("admin:tenants_tenant_change", args=[tenant.pk])
    response = client.post(
        url,
        {
            "name": tenant.name,
            "status": "suspended",
            "max_concurrent_calls": 25,
            "api_requests_per_minute": tenant.api_requests_per_minute,
            "max_agents": tenant.max_agents,
            "max_phone_numbers": tenant.max_phone_numbers,
            "max_document_bytes": tenant.max_document_bytes,
            "max_outbound_calls_per_minute": tenant.max_outbound_calls_per_minute,
            "max_number_purchases_per_day": tenant.max_number_purchases_per_day,
            "dispute_window_days": tenant.dispute_window_days,
        },
    )
    assert response.status_code == 302
    tenant.refresh_from_db()
    assert (tenant.status, tenant.max_concurrent_calls) == ("suspended", 25)
    event = AuditEvent.objects.for_tenant(tenant).get(action="tenant.update")
    assert event.actor_type == "system"
    assert event.actor_label == f"operator {staff.email}"
    assert event.changes == {"status": ["active", "suspended"], "max_concurrent_calls": [10, 25]}


def test_audit_events_are_read_only_in_the_admin() -> None:
    from tests.factories import AuditEventFactory

    event = AuditEventFactory()
    client = verified_login(Client(), UserFactory(is_staff=True, is_superuser=True))
    change = reverse("admin:tenants_auditevent_change", args=[event.pk])
    page = client.get(change)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert (
        client.post(reverse("admin:tenants_auditevent_delete", args=[event.pk])).status_code == 403
    )
