"""`manage.py restore_tenant --in FILE [--as SLUG]` (docs/api.md).

Here rather than in tenants: restoring under a new schema re-seals the tenant's files, whose
format belongs to mlcore.storage (the service in tenants.backup takes that function), and the
restored schedules' due index is recomputed by mlcore's schedules service in the same transaction.
"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from mlcore import storage
from mlcore.services.schedules import schedules_due_refresh
from tenants.backup.restore import tenant_restore
from tenants.errors import ServiceError


class Command(BaseCommand):
    help = ("Restore a tenant from a backup archive, after checking its signature and checksums: "
            "in place (the same tenant rolled back; others untouched) or, with --as SLUG or on "
            "another installation holding the master key, as a new tenant.")

    def add_arguments(self, parser):
        parser.add_argument("--in", required=True, dest="archive", metavar="FILE")
        parser.add_argument("--as", dest="as_slug", metavar="SLUG",
                            help="restore as a new tenant with this slug (default: the archive's)")

    def handle(self, *args, **options):
        try:
            result = tenant_restore(path=options["archive"], as_slug=options["as_slug"],
                                    reseal=storage.reseal_file,
                                    loaded=lambda tenant: schedules_due_refresh(tenant=tenant))
        except ServiceError as exc:
            raise CommandError(exc.message)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages))
        except storage.StorageError as exc:
            raise CommandError(str(exc))
        how = "rolled back in place" if result.in_place else "restored as a new tenant"
        self.stdout.write(
            f"{result.tenant.slug} {how} from archive sha256 {result.archive_sha256}: {result.rows:,} "
            f"rows, {result.files} files, {len(result.users_created)} user(s) created, "
            f"{result.tokens_skipped} token(s) left with the original, in {result.seconds:.2f} s.")
        self.stdout.write(f"audit chain: {result.audit.describe()}")
        if not result.audit.ok:
            raise CommandError(f"{result.tenant.slug} was restored but its audit chain does not verify: "
                               f"{result.audit.reason}", returncode=1)
