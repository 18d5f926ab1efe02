"""Management commands of the tenants app."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tenants.models import ApiToken, Tenant

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_tenant_prints_the_url_and_admin(outbox):
    out = run("create_tenant", "--slug", "initech", "--name", "Initech", "--admin-email", "p@initech.test")
    assert "http://initech.localhost:8000/" in out
    assert "Set-password link" in out
    assert Tenant.objects.get(slug="initech").plan.slug == "team"


def test_create_tenant_refuses_a_reserved_slug():
    with pytest.raises(CommandError, match="'admin' is reserved"):
        run("create_tenant", "--slug", "admin", "--name", "X", "--admin-email", "p@x.test")


def test_create_api_token_prints_the_id_then_the_token_alone_on_the_last_line(world):
    out = run("create_api_token", "--tenant", "acme", "--email", "bob@acme.test", "--scope", "write",
              "--days", "5")
    lines = out.strip().splitlines()
    assert lines[0].startswith("id: ")
    token_id = int(lines[0].split(": ")[1])
    assert lines[-1].startswith("mlp_") and " " not in lines[-1]
    token = ApiToken.objects.get(pk=token_id)
    assert token.scope == "write"
    assert token.user == world.bob


def test_create_api_token_refuses_a_non_member(world):
    with pytest.raises(CommandError, match="not a member"):
        run("create_api_token", "--tenant", "acme", "--email", "charlie@globex.test")


def test_revoke_api_token_revokes(world):
    out = run("create_api_token", "--tenant", "acme", "--email", "bob@acme.test")
    token_id = int(out.splitlines()[0].split(": ")[1])
    run("revoke_api_token", str(token_id))
    assert ApiToken.objects.get(pk=token_id).revoked_at is not None


def test_delete_tenant_wants_yes():
    run("create_tenant", "--slug", "initech", "--name", "Initech", "--admin-email", "p@initech.test")
    with pytest.raises(CommandError, match="--yes"):
        run("delete_tenant", "--slug", "initech")
    run("delete_tenant", "--slug", "initech", "--yes")
    assert not Tenant.objects.filter(slug="initech").exists()


def test_upgrade_tenants_refuses_fewer_than_one_worker():
    with pytest.raises(CommandError, match=r"^--workers must be at least 1 \(got 0\)\.$"):
        run("upgrade_tenants", "--workers", "0")
