import io
import re

from django.urls import reverse
from pypdf import PdfReader

from billing import selectors, services
from billing.selectors import INTERNAL_NOTE
from tenants.roles import Role
from tests import factories
from tests.conftest import TenantWorld
from tests.console.conftest import member_client, text


def invoice_url(world: TenantWorld, name: str = "invoice") -> str:
    return reverse(f"console:{name}", kwargs={"id": world.invoice.public_id})


def field_html(html: str, name: str) -> str:
    """The markup of the form field `name`, with its label, value and errors."""
    found = re.search(rf'<div class="field[^"]*">\s*<label for="id_{name}">.*?</div>', html, re.S)
    assert found, f"no field {name}"
    return found.group(0)


def test_finance_sees_the_mode_standing_preview_invoices_and_credit_notes(
    world: TenantWorld,
) -> None:
    html = text(member_client(world, Role.FINANCE).get("/billing/"))
    assert INTERNAL_NOTE in html
    assert 'data-testid="plan">standard<' in html
    # The preview: the world's one resolved conversation at 0.70 USD, drilling down to usage.
    assert 'href="/billing/usage/?line=1"' in html
    assert 'data-testid="total">0.70 USD<' in html
    assert 'data-testid="usage-per-day"' in html
    assert "1 resolved conversations billed" in html
    assert f'href="{invoice_url(world)}">Invoice {world.invoice.number}</a>' in html
    assert '<span class="badge finalized">Finalized</span>' in html
    assert world.credit_note.public_id in html


def test_an_invoice_shows_its_lines_totals_status_and_exports(world: TenantWorld) -> None:
    html = text(member_client(world, Role.FINANCE).get(invoice_url(world)))
    assert f"Invoice {world.invoice.number}" in html
    assert 'data-testid="invoice-status">Finalized</span>' in html
    assert "Resolved conversations" in html
    assert 'data-testid="total">0.70 USD<' in html
    assert f'href="{invoice_url(world, "invoice-usage")}?line=1"' in html
    assert f'href="{invoice_url(world, "invoice-csv")}"' in html
    assert f'href="{invoice_url(world, "invoice-pdf")}"' in html
    notes = reverse("console:credit-note-usage", kwargs={"id": world.credit_note.public_id})
    assert f'href="{notes}"' in html


def test_a_line_drills_down_to_its_usage_events_and_their_calls(world: TenantWorld) -> None:
    client = member_client(world, Role.FINANCE)
    html = text(client.get(invoice_url(world, "invoice-usage") + "?line=1"))
    assert f"Invoice {world.invoice.number}: usage of line 1" in html
    assert f'href="/calls/{world.call.public_id}/"' in html
    assert f"<td>{world.agent.name}</td>" in html
    assert "+1" in html
    assert client.get(invoice_url(world, "invoice-usage") + "?line=7").status_code == 404
    assert client.get(invoice_url(world, "invoice-usage") + "?line=one").status_code == 404


def test_the_csv_export_is_the_apis(world: TenantWorld) -> None:
    response = member_client(world, Role.FINANCE).get(invoice_url(world, "invoice-csv"))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert f'filename="invoice-{world.invoice.number}.csv"' in response["Content-Disposition"]
    console_csv = b"".join(response.streaming_content).decode()
    api = world.client.get(f"/v1/billing/invoices/{world.invoice.public_id}/export")
    assert console_csv == b"".join(api.streaming_content).decode()
    header, line = console_csv.splitlines()
    assert header.startswith("invoice,number,position,kind,meter,description")
    assert line.startswith(f"{world.invoice.public_id},{world.invoice.number},1,usage,")


def test_the_pdf_export_is_a_readable_pdf_of_the_invoice(world: TenantWorld) -> None:
    response = member_client(world, Role.FINANCE).get(invoice_url(world, "invoice-pdf"))
    assert response["Content-Type"] == "application/pdf"
    assert f'filename="invoice-{world.invoice.number}.pdf"' in response["Content-Disposition"]
    data = response.content
    assert data.startswith(b"%PDF-")
    # Every object sits where the cross-reference table says.
    xref = int(data.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert data[xref:].startswith(b"xref\n")
    offsets = re.findall(rb"(\d{10}) 00000 n ", data[xref:])
    for number, offset in enumerate(offsets, 1):
        assert data[int(offset) :].startswith(b"%d 0 obj" % number)
    reader = PdfReader(io.BytesIO(data), strict=True)
    content = "\n".join(page.extract_text() for page in reader.pages)
    assert f"Invoice {world.invoice.number}" in content
    assert world.invoice.public_id in content
    assert "Resolved conversations" in content
    assert "Total" in content and "0.70 USD" in content
    assert world.credit_note.public_id in content


def test_the_current_periods_usage_follows_a_preview_line_and_filters(
    world: TenantWorld,
) -> None:
    client = member_client(world, Role.FINANCE)
    html = text(client.get("/billing/usage/?line=1"))
    assert "Line 1 of the preview" in html
    assert f'href="/calls/{world.call.public_id}/"' in html
    html = text(client.get("/billing/usage/?call=call_someotherone"))
    assert world.call.public_id not in html
    assert "No usage here" in html
    assert client.get("/billing/usage/?line=9").status_code == 404


def test_a_credit_notes_usage_lists_the_reversals_it_pays_back(world: TenantWorld) -> None:
    call = factories.CallFactory(phone_number=world.phone_number)
    billed = factories.UsageEventFactory(
        tenant=world.tenant, reference=call.public_id, occurred_at=world.usage_event.occurred_at
    )
    reversal = factories.UsageEventFactory(
        tenant=world.tenant,
        reference=call.public_id,
        quantity=-1,
        reverses=billed,
        idempotency_key=f"{call.public_id}#2",
        occurred_at=billed.occurred_at,
        reason="re-tagged as not resolved",
    )
    note = factories.CreditNoteFactory(
        invoice=world.invoice, events_after=billed.pk, events_through=reversal.pk
    )
    url = reverse("console:credit-note-usage", kwargs={"id": note.public_id})
    html = text(member_client(world, Role.FINANCE).get(url))
    assert f'href="/calls/{call.public_id}/"' in html
    assert f"Reverses <code>{billed.public_id}</code>: re-tagged as not resolved" in html


def test_finance_reads_the_plans_and_caps_but_only_owners_see_the_forms(
    world: TenantWorld,
) -> None:
    html = text(member_client(world, Role.FINANCE).get("/billing/plan/"))
    assert "Plans on offer" in html
    assert 'data-testid="current-plan">standard<' in html
    assert "Only owners change the plan and the caps." in html
    assert '<form method="post" action="/billing/plan/' not in html
    html = text(member_client(world).get("/billing/plan/"))
    assert 'action="/billing/plan/change/"' in html
    assert 'action="/billing/plan/caps/"' in html
    assert "takes effect when the current billing period ends" in html


def test_an_owner_changes_plan_from_the_next_period_after_confirming(world: TenantWorld) -> None:
    pro = factories.PlanFactory(code="pro", name="Pro")
    factories.PriceFactory(plan=pro, unit_amount=50)
    client = member_client(world)
    asked = client.post("/billing/plan/change/", {"plan": "pro"})
    assert asked.status_code == 200
    assert "the next billing period" in text(asked)
    assert 'data-testid="confirm"' in text(asked)
    assert services.subscription_for(world.tenant).next_plan is None

    done = client.post("/billing/plan/change/", {"plan": "pro", "confirmed": "yes"}, follow=True)
    subscription = services.subscription_for(world.tenant)
    assert subscription.next_plan == pro
    assert subscription.plan.code == "standard"
    assert "you will be on the pro plan; this period stays on standard" in text(done)
    assert 'data-testid="next-plan">pro<' in text(done)


def test_an_unknown_plan_is_refused_next_to_the_field(world: TenantWorld) -> None:
    response = member_client(world).post(
        "/billing/plan/change/", {"plan": "platinum", "confirmed": "yes"}
    )
    assert response.status_code == 400
    assert "Select a valid choice" in field_html(text(response), "plan")
    assert services.subscription_for(world.tenant).next_plan is None


def test_an_owner_sets_caps_with_spend_in_the_currency(world: TenantWorld) -> None:
    response = member_client(world).post(
        "/billing/plan/caps/",
        {
            "usage_soft_limit": "100",
            "usage_hard_limit": "",
            "spend_soft_limit": "12.50",
            "spend_hard_limit": "20",
            "billing_email": "ap@example.com",
        },
        follow=True,
    )
    assert "Caps saved" in text(response)
    subscription = services.subscription_for(world.tenant)
    assert subscription.usage_soft_limit == 100
    assert subscription.usage_hard_limit is None
    assert (subscription.spend_soft_limit, subscription.spend_hard_limit) == (1250, 2000)
    assert subscription.billing_email == "ap@example.com"
    # The form shows them back in the currency.
    assert 'value="12.50"' in field_html(text(response), "spend_soft_limit")
    overview = text(member_client(world, Role.FINANCE).get("/billing/"))
    assert "<dt>Spend soft limit</dt><dd>12.50 USD</dd>" in overview


def test_caps_that_do_not_fit_are_refused_next_to_the_field_with_values_kept(
    world: TenantWorld,
) -> None:
    client = member_client(world)
    response = client.post(
        "/billing/plan/caps/", {"usage_soft_limit": "50", "usage_hard_limit": "10"}
    )
    assert response.status_code == 400
    soft = field_html(text(response), "usage_soft_limit")
    assert "A soft limit cannot be above the hard limit." in soft
    assert 'value="50"' in soft
    assert 'value="10"' in field_html(text(response), "usage_hard_limit")
    response = client.post("/billing/plan/caps/", {"spend_hard_limit": "1.005"})
    assert response.status_code == 400
    assert "decimal places" in field_html(text(response), "spend_hard_limit")
    subscription = services.subscription_for(world.tenant)
    assert (subscription.usage_soft_limit, subscription.spend_hard_limit) == (None, None)


def test_finance_cannot_change_the_caps(world: TenantWorld) -> None:
    response = member_client(world, Role.FINANCE).post(
        "/billing/plan/caps/", {"usage_hard_limit": "1"}
    )
    assert response.status_code == 403
    assert services.subscription_for(world.tenant).usage_hard_limit is None


def test_the_shared_selectors_keep_the_apis_answers(world: TenantWorld) -> None:
    api = world.client.get(f"/v1/billing/invoices/{world.invoice.public_id}/usage?line=1")
    assert [e["call"] for e in api.json()["results"]] == [world.call.public_id]
    events = selectors.invoice_usage_events(world.invoice, 1)
    assert events is not None
    assert list(events.values_list("reference", flat=True)) == [world.call.public_id]
    assert selectors.invoice_usage_events(world.invoice, 5) is None
    assert world.client.get("/v1/billing/usage?period=current").json()["results"]
