"""`manage.py monitor_models [--tenant SLUG] [--day YYYY-MM-DD]`: the daily drift reports, now."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django_tenants.utils import get_public_schema_name

from mlcore.services import monitoring
from tenants.models import Tenant


class Command(BaseCommand):
    help = ("Compare the sampled inputs of every production model version on a day (today by "
            "default) with its training data, store the day's report (replacing one already made) "
            "and notify the model's owner of a new drift. Prints one line per version.")

    def add_arguments(self, parser):
        parser.add_argument("--tenant", metavar="SLUG", help="Only this tenant.")
        parser.add_argument("--day", metavar="YYYY-MM-DD", help="The day of the samples (default: today, UTC).")

    def handle(self, *args, **options):
        try:
            day = date.fromisoformat(options["day"]) if options["day"] else timezone.now().date()
        except ValueError:
            raise CommandError(f"--day must be a date like 2026-01-31, not '{options['day']}'.")
        tenants = Tenant.objects.exclude(schema_name=get_public_schema_name()).order_by("id")
        if options["tenant"]:
            tenants = tenants.filter(slug=options["tenant"])
            if not tenants.exists():
                raise CommandError(f"No tenant with the slug '{options['tenant']}'.")
        count = 0
        for tenant in tenants:
            for report in monitoring.monitoring_run_all(tenant=tenant, day=day):
                count += 1
                psi = "–" if report.max_psi is None else f"{report.max_psi:.3f}"
                self.stdout.write(f"{tenant.slug}: version {report.model_version_id} on {day}: {report.rows} rows, "
                                  f"max PSI {psi}{' (drift)' if report.drifted else ''}")
        self.stdout.write(f"{count} report(s).")
