from django.core.management.base import BaseCommand, CommandError

from tenants.models import ApiToken
from tenants.services import api_token_revoke


class Command(BaseCommand):
    help = "Revoke an API token by id; it is refused from the next request on."

    def add_arguments(self, parser):
        parser.add_argument("token_id", type=int)

    def handle(self, *args, **options):
        token = ApiToken.objects.filter(pk=options["token_id"]).first()
        if token is None:
            raise CommandError(f"No API token with id {options['token_id']}.")
        api_token_revoke(token=token, actor=None)
        self.stdout.write(f"Revoked token {token.id} ({token.name}).")
