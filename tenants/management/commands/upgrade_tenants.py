from django.core.management.base import BaseCommand, CommandError

from tenants.upgrades import tenants_upgrade


class Command(BaseCommand):
    help = ("Migrate the public schema, the tenant template, then every tenant schema in parallel; "
            "a tenant that fails is reported and the others go on. Exit 1 if any failed; re-run to finish.")

    def add_arguments(self, parser):
        parser.add_argument("--workers", type=int, default=2, help="processes migrating tenants (default 2)")

    def handle(self, *args, **options):
        workers = options["workers"]
        if workers < 1:
            raise CommandError(f"--workers must be at least 1 (got {workers}).")
        verbosity = options["verbosity"]

        def show(result):
            if result.status == "failed":
                self.stderr.write(f"FAILED {result.tenant} ({result.schema}): {result.error}")
            elif verbosity >= 2:
                self.stdout.write(f"{result.status} {result.tenant} ({result.seconds:.2f} s)")

        report = tenants_upgrade(workers=workers, verbosity=max(verbosity - 2, 0), on_result=show)
        if report.halted:
            raise CommandError(f"Stopped before any tenant: {report.halted}")
        self.stdout.write(f"{len(report.results)} tenant schemas in {report.seconds:.1f} s on {workers} workers: "
                          f"{report.count('migrated')} migrated, {report.count('up to date')} already up to date, "
                          f"{len(report.failed)} failed.")
        if report.failed:
            names = ", ".join(f"{r.tenant} ({r.schema})" for r in report.failed)
            raise CommandError(f"{len(report.failed)} tenant schema(s) failed to migrate: {names}. "
                               "Fix the cause and run upgrade_tenants again: migrated tenants are skipped.")
        self.stdout.write(self.style.SUCCESS("All tenant schemas are up to date."))
