"""manage.py verify_audit [--tenant SLUG] [--export FILE --manifest FILE [--public-key B64]]

Exit status 0 when intact, 1 when broken, naming the first bad sequence number (docs/api.md).
"""

from django.core.management.base import BaseCommand, CommandError

from tenants.auditing.audit_chain import chain_id_of, chain_ids, chains_verify
from tenants.auditing.audit_export import export_file_verify


class Command(BaseCommand):
    help = ("Verify the audit hash chains (all, or one tenant's), or check an exported file against "
            "its signed manifest offline.")

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="slug of the tenant (also of a deleted one)")
        parser.add_argument("--export", help="an exported file (csv or jsonl) to check offline")
        parser.add_argument("--manifest", help="its manifest (JSON, from .../manifest/)")
        parser.add_argument("--public-key", help="base64 Ed25519 public key (default: this platform's)")

    def handle(self, *args, **options):
        if options["export"] or options["manifest"]:
            return self._check_export(options)
        tenant_ids = chain_ids() if not options["tenant"] else [self._tenant_id(options["tenant"])]
        results = chains_verify(tenant_ids=tenant_ids, trigger="command")
        for result in results:
            self.stdout.write(result.describe())
        broken = [r for r in results if not r.ok]
        if broken:
            first = broken[0]
            raise CommandError(f"audit chain of {first.tenant_slug or 'platform'} is broken at entry "
                               f"#{first.first_bad_seq}: {first.reason}", returncode=1)
        if not results:
            self.stdout.write(self.style.SUCCESS("No audit entries recorded yet: no chain to verify."))
            return
        entries = sum(r.entries for r in results)
        self.stdout.write(self.style.SUCCESS(f"{len(results)} audit chain(s) intact ({entries:,} entries)."))

    def _check_export(self, options):
        if not (options["export"] and options["manifest"]):
            raise CommandError("Give both --export FILE and --manifest FILE.")
        check = export_file_verify(options["export"], options["manifest"],
                                   public_key=options["public_key"])
        if not check.ok:
            where = f" (entry #{check.first_bad_seq})" if check.first_bad_seq is not None else ""
            raise CommandError(f"export does NOT verify{where}: {check.reason}", returncode=1)
        self.stdout.write(self.style.SUCCESS(f"export verified: {check.count} entries, signature, "
                                             "SHA-256 and chain hashes match the manifest."))

    @staticmethod
    def _tenant_id(slug: str) -> int:
        found = chain_id_of(slug)
        if found is None:
            raise CommandError(f"No tenant or audit chain with the slug '{slug}'.")
        return found
