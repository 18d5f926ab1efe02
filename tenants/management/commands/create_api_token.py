from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.models import Tenant, User
from tenants.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for a member of a tenant. Prints 'id: N', then the token alone."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--email", required=True)
        parser.add_argument("--scope", choices=["read", "write"], default="read")
        parser.add_argument("--days", type=int, default=90, help="days until it expires (1-365)")
        parser.add_argument("--name", default="command-line token")

    def handle(self, *args, **options):
        tenant = Tenant.objects.exclude(schema_name="public").filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant with the slug '{options['tenant']}'.")
        user = User.objects.filter(email__iexact=options["email"]).first()
        if user is None:
            raise CommandError(f"No user with the e-mail '{options['email']}'.")
        try:
            token, secret = api_token_create(user=user, tenant=tenant, name=options["name"],
                                             scope=options["scope"], days=options["days"])
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages))
        self.stdout.write(f"id: {token.id}")
        self.stdout.write(f"scope: {token.scope}, expires: {token.expires_at.isoformat()}")
        self.stdout.write(secret)
