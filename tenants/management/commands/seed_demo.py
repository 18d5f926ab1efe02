"""Demo tenants and people of docs/api.md. Idempotent: a second run changes nothing but the
password (so PORTAL_DEMO_PASSWORD can be changed)."""

import os
import secrets

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from tenants import services
from tenants.models import Membership, Role, Tenant, User

DEMO_TENANTS = [("acme", "Acme Corp"), ("globex", "Globex Corporation")]
DEMO_PEOPLE = [
    ("alice@acme.test", "Alice Admin", [("acme", Role.ADMIN)]),
    ("bob@acme.test", "Bob Member", [("acme", Role.MEMBER)]),
    ("vera@acme.test", "Vera Viewer", [("acme", Role.VIEWER)]),
    ("audrey@acme.test", "Audrey Auditor", [("acme", Role.AUDITOR)]),
    ("charlie@globex.test", "Charlie Globex", [("globex", Role.ADMIN)]),
    ("dana@example.test", "Dana Both", [("acme", Role.MEMBER), ("globex", Role.MEMBER)]),
]
OPERATOR = ("ops@portal.test", "Platform Operator")


def demo_password() -> str:
    from_env = os.environ.get("PORTAL_DEMO_PASSWORD")
    if from_env:
        return from_env
    path = settings.VAR_DIR / "demo_password"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("demo-" + secrets.token_urlsafe(9))
        path.chmod(0o600)
    return path.read_text().strip()


class Command(BaseCommand):
    help = "Create the demo tenants (acme, globex), their people and a platform operator."

    def add_arguments(self, parser):
        parser.add_argument("--logins", action="store_true", help="print a table of demo logins")

    def handle(self, *args, **options):
        password = demo_password()
        tenants = {}
        for slug, name in DEMO_TENANTS:
            tenant = Tenant.objects.filter(slug=slug).first()
            if tenant is None:
                first_admin = next(e for e, _, grants in DEMO_PEOPLE if (slug, Role.ADMIN) in grants)
                tenant = services.tenant_create(slug=slug, name=name, admin_email=first_admin,
                                                notify=False).tenant
            tenants[slug] = tenant
        with transaction.atomic():
            for email, full_name, grants in DEMO_PEOPLE:
                user = self._person(email, full_name, password)
                for slug, role in grants:
                    if not Membership.objects.filter(user=user, tenant=tenants[slug]).exists():
                        services.membership_add(tenant=tenants[slug], email=email, role=role,
                                                actor=None, notify=False)
            ops = self._person(*OPERATOR, password)
            if not (ops.is_staff and ops.is_superuser):
                ops.is_staff = ops.is_superuser = True
                ops.save(update_fields=["is_staff", "is_superuser"])
        if options["logins"]:
            self._print_logins(password)
        else:
            self.stdout.write(f"Demo password: {password}")

    def _print_logins(self, password: str) -> None:
        self.stdout.write(f" Demo logins (password for all: {password})")
        for email, _, grants in DEMO_PEOPLE:
            where = ", ".join(f"{role} of {slug}" for slug, role in grants)
            self.stdout.write(f"   {email:<22} {where}")
        self.stdout.write(f"   {OPERATOR[0]:<22} platform operator (operator console)")

    @staticmethod
    def _person(email: str, full_name: str, password: str) -> User:
        user = User.objects.filter(email__iexact=email).first() or User.objects.create_user(email=email)
        if not user.check_password(password) or user.full_name != full_name:
            user.full_name = full_name
            user.set_password(password)
            user.save(update_fields=["full_name", "password"])
        return user
