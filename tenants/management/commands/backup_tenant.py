"""`manage.py backup_tenant --slug S --out FILE`: one signed archive of one tenant (docs/api.md)."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.backup.services import tenant_backup
from tenants.errors import ServiceError
from tenants.models import Tenant


class Command(BaseCommand):
    help = ("Write one archive of a tenant: its schema's rows, its public rows (memberships, limits, "
            "usage, job ledger, tokens, wrapped data keys, audit chain), the people they name, its "
            "encrypted files and audit witness file; checksummed and signed.")

    def add_arguments(self, parser):
        parser.add_argument("--slug", required=True)
        parser.add_argument("--out", required=True, metavar="FILE")

    def handle(self, *args, **options):
        tenant = Tenant.objects.exclude(schema_name="public").filter(slug=options["slug"]).first()
        if tenant is None:
            raise CommandError(f"No tenant with the slug '{options['slug']}'.")
        try:
            result = tenant_backup(tenant=tenant, out=options["out"])
        except ServiceError as exc:
            raise CommandError(exc.message)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages))
        self.stdout.write(f"Backed up {tenant.slug} to {result.path}: {result.size:,} bytes, "
                          f"{result.tables} tables, {result.files} files, {result.audit_entries} audit "
                          f"entries, in {result.seconds:.2f} s; sha256 {result.sha256}")
