from django.core.management.base import BaseCommand, CommandError

from tenants.models import Tenant
from tenants.services import tenant_delete


class Command(BaseCommand):
    help = ("Delete a tenant: revoke its sessions and tokens, destroy its data key, drop its schema "
            "and files. Audit entries stay.")

    def add_arguments(self, parser):
        parser.add_argument("--slug", required=True)
        parser.add_argument("--yes", action="store_true", help="Do it without asking.")

    def handle(self, *args, **options):
        tenant = Tenant.objects.exclude(schema_name="public").filter(slug=options["slug"]).first()
        if tenant is None:
            raise CommandError(f"No tenant with the slug '{options['slug']}'.")
        if not options["yes"]:
            raise CommandError(f"This destroys every dataset and model of '{tenant.slug}' for good. "
                               "Run again with --yes to confirm.")
        tenant_delete(tenant=tenant)
        self.stdout.write(f"Deleted tenant {tenant.slug}.")
