"""`manage.py reconcile_usage [--tenant SLUG]`: safe to run while the site serves."""

from django.core.management.base import BaseCommand, CommandError

from mlcore.services import usage
from tenants.models import Tenant


class Command(BaseCommand):
    help = ("Give back the quota reservations of uploads whose web process died (their lease "
            "expired) and delete their files, then recompute each tenant's storage bytes, datasets "
            "and model versions from what it stores plus the uploads in progress, correcting drift. "
            "Prints every correction (also logged).")

    def add_arguments(self, parser):
        parser.add_argument("--tenant", metavar="SLUG", help="Only this tenant.")

    def handle(self, *args, **options):
        tenants = None
        if options["tenant"]:
            tenants = list(Tenant.objects.filter(slug=options["tenant"]))
            if not tenants:
                raise CommandError(f"No tenant with the slug '{options['tenant']}'.")
        reaped = usage.reap_upload_leases()
        corrections = usage.usage_reconcile(tenants=tenants)
        self.stdout.write(f"{len(reaped)} abandoned upload(s) reaped.")
        for correction in corrections:
            self.stdout.write(f"corrected {correction}")
        self.stdout.write(f"{len(corrections)} correction(s).")
