"""manage.py flush_audit [--tenant SLUG] [--batch N]

Moves buffered access-log entries into their chains now (Celery beat does it every second): for
instance before a backup, or after the web processes were killed and beat is not running.
"""

from django.core.management.base import BaseCommand, CommandError

from tenants.auditing import audit
from tenants.auditing.audit_chain import chain_id_of


class Command(BaseCommand):
    help = "Append buffered access-log entries to their audit chains (all chains, or one tenant's)."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="slug of the tenant (also of a deleted one)")
        parser.add_argument("--batch", type=int, default=audit.FLUSH_BATCH,
                            help=f"entries per transaction (default {audit.FLUSH_BATCH})")

    def handle(self, *args, **options):
        if options["batch"] < 1:
            raise CommandError("--batch must be at least 1.")
        if options["tenant"]:
            moved = audit.flush_pending(tenant_id=self._tenant_id(options["tenant"]), batch=options["batch"])
        else:
            moved = audit.flush_all_pending(batch=options["batch"])
        self.stdout.write(f"{moved} buffered audit entries appended.")

    @staticmethod
    def _tenant_id(slug: str) -> int:
        found = chain_id_of(slug)
        if found is None:
            raise CommandError(f"No tenant or buffered audit entries with the slug '{slug}'.")
        return found
