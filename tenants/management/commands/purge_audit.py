"""Retention: delete a chain's entries older than a date, leaving a signed checkpoint."""

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from tenants.auditing import audit
from tenants.auditing.audit_chain import audit_purge
from tenants.errors import ServiceError
from tenants.models import AuditEvent, Tenant


class Command(BaseCommand):
    help = ("Operators only: delete audit entries older than --before from one chain (retention). "
            "The chain then starts at a signed checkpoint, so verification still holds.")

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--tenant", help="slug of the tenant (also of a deleted one)")
        target.add_argument("--platform", action="store_true", help="the platform's own chain")
        parser.add_argument("--before", required=True, help="ISO date or date-time, UTC")
        parser.add_argument("--operator", default="", help="e-mail of the operator, for the record")
        parser.add_argument("--yes", action="store_true", help="Do it without asking.")

    def handle(self, *args, **options):
        try:
            before = datetime.fromisoformat(options["before"])
        except ValueError:
            raise CommandError("--before must be an ISO date, e.g. 2025-01-01")
        before = before if before.tzinfo else before.replace(tzinfo=UTC)
        tenant_id = None if options["platform"] else self._tenant_id(options["tenant"])
        if not options["yes"]:
            raise CommandError("This deletes audit entries for good. Run again with --yes.")
        with audit.acting_as(audit.Actor(actor_email=options["operator"], role="operator",
                                         auth_method="command")):
            try:
                checkpoint = audit_purge(tenant_id=tenant_id, before=before,
                                         actor_email=options["operator"])
            except ServiceError as refused:
                raise CommandError(refused.message, returncode=1)
        if checkpoint is None:
            self.stdout.write("Nothing older than that.")
            return
        self.stdout.write(f"Purged {checkpoint.purged} entries through #{checkpoint.through_seq}; "
                          f"signed checkpoint {checkpoint.id} left.")

    @staticmethod
    def _tenant_id(slug: str) -> int:
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is not None:
            return tenant.id
        found = AuditEvent.objects.filter(tenant_slug=slug).values_list("tenant_id", flat=True).first()
        if found is None:
            raise CommandError(f"No tenant or audit chain with the slug '{slug}'.")
        return found
