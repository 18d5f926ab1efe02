"""`manage.py rotate_keys [--reencrypt] [--tenant SLUG]`: safe to run while the site serves."""

from django.core.management.base import BaseCommand, CommandError

from mlcore import storage
from tenants.crypto import keys
from tenants.models import Tenant


def _counts(counts: dict) -> str:
    if not counts:
        return "no objects"
    return ", ".join(f"{'unreadable' if v is None else f'v{v}'}={n}" for v, n in counts.items())


class Command(BaseCommand):
    help = ("Re-wrap every tenant data key under the newest master key (PORTAL_MASTER_KEYS); with "
            "--reencrypt also give each selected tenant a new data key and rewrite its files under "
            "it. Reports how many objects are on each data-key version before and after.")

    def add_arguments(self, parser):
        parser.add_argument("--reencrypt", action="store_true",
                            help="New data-key version per tenant; re-encrypt all of its files.")
        parser.add_argument("--tenant", metavar="SLUG", help="Only this tenant.")

    def handle(self, *args, **options):
        tenants = Tenant.objects.exclude(schema_name="public").order_by("slug")
        if options["tenant"]:
            tenants = tenants.filter(slug=options["tenant"])
            if not tenants.exists():
                raise CommandError(f"No tenant with the slug '{options['tenant']}'.")
        selected = list(tenants)
        only = selected[0] if options["tenant"] else None

        rewrap = keys.rewrap_all(tenant=only)
        self.stdout.write(f"Master key {rewrap['master_key_id']}: {rewrap['rewrapped']} data key(s) "
                          f"re-wrapped, {rewrap['under_newest']} under it in total.")
        failed = 0
        for tenant in selected:
            failed += self._tenant(tenant, reencrypt=options["reencrypt"])
        if failed:
            raise CommandError(f"{failed} object(s) could not be re-encrypted (see above); "
                               "they stay readable under their old key version.")

    def _tenant(self, tenant: Tenant, *, reencrypt: bool) -> int:
        if not reencrypt:
            counts = storage.count_by_key_version(tenant)
            self.stdout.write(f"{tenant.slug}: before {_counts(counts)}; after {_counts(counts)}")
            return 0
        result = storage.reencrypt_tenant(tenant)
        self.stdout.write(
            f"{tenant.slug}: before {_counts(result.before)}; after {_counts(result.after)} "
            f"(data key v{result.version}, {result.rewritten} object(s) re-encrypted)"
        )
        for name in result.failed:
            self.stderr.write(f"{tenant.slug}: could not re-encrypt {name}")
        return len(result.failed)
