from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.accounts.hosts import tenant_url
from tenants.errors import ServiceError
from tenants.services import tenant_create
from tenants.web.pages import page_error


class Command(BaseCommand):
    help = "Create a tenant with its own schema and a first admin."

    def add_arguments(self, parser):
        parser.add_argument("--slug", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--admin-email", required=True)
        parser.add_argument("--plan", default=None)

    def handle(self, *args, **options):
        try:
            created = tenant_create(slug=options["slug"], name=options["name"],
                                    admin_email=options["admin_email"], plan=options["plan"])
        except (ValidationError, ServiceError) as exc:
            raise CommandError(page_error(exc)[0])
        tenant = created.tenant
        self.stdout.write(f"Created tenant {tenant.slug} ({tenant.name}) on plan {tenant.plan.slug}")
        self.stdout.write(f"URL: {tenant_url(tenant, '/')}")
        self.stdout.write(f"Admin: {created.admin.email}")
        if created.set_password_url:
            self.stdout.write(f"Set-password link (works once): {created.set_password_url}")
