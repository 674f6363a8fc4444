"""Issue the invoice of the period containing a date, for one tenant or all of them."""

from datetime import UTC, datetime, time
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from billing import services
from tenants.management.operator import OperatorCommand
from tenants.models import Tenant


class Command(OperatorCommand):
    help = (
        "Close the billing period containing --date (default: every ended period not yet "
        "invoiced) for --tenant (default: every tenant), then settle credit notes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="the tenant's public id (t_…)")
        parser.add_argument("--date", help="a day inside the period to close, YYYY-MM-DD (UTC)")

    def handle(self, *args: Any, **options: Any) -> None:
        tenants = Tenant.objects.all()
        if options["tenant"]:
            tenants = tenants.filter(public_id=options["tenant"])
            if not tenants.exists():
                raise CommandError(f"No tenant {options['tenant']}.")
        day = None
        if options["date"]:
            try:
                day = datetime.combine(datetime.fromisoformat(options["date"]), time(), UTC)
            except ValueError as exc:
                raise CommandError("--date is a day, YYYY-MM-DD.") from exc
        for tenant in tenants:
            if day is None:
                periods = services.periods_due(tenant)
            else:
                period = services.period_at(services.subscription_for(tenant), day)
                if period.end > timezone.now():
                    raise CommandError(f"The period {period.start:%Y-%m-%d} has not ended yet.")
                periods = [period]
            for period in periods:
                invoice = services.period_close(tenant, period)
                self.stdout.write(
                    f"{tenant.public_id}: invoice {invoice.number} ({invoice.public_id}) for "
                    f"{period.start:%Y-%m-%d} - {period.end:%Y-%m-%d}: {invoice.total} "
                    f"{invoice.currency} minor units, {invoice.status}"
                )
            for note in services.settle(tenant):
                self.stdout.write(f"{tenant.public_id}: credit note {note.public_id}")
