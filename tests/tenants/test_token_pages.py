"""The API tokens page (/account/tokens/): create with a scope, see the secret once, revoke."""

import re

import pytest
from rest_framework.test import APIClient

from tenants.models import ApiToken
from tests import factories

pytestmark = pytest.mark.django_db


def create(client, **data):
    body = {"name": "laptop", "scope": "read", "expires_in_days": 30, **data}
    return client.post("/account/tokens/", body)


def secret_in(response) -> str:
    match = re.search(rb'data-testid="token-secret">(mlp_[^<]+)<', response.content)
    assert match, "the page shows the new secret"
    return match.group(1).decode()


def bearer(secret: str) -> APIClient:
    client = APIClient(HTTP_HOST="acme.localhost")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.mark.parametrize("name", ["alice", "bob", "vera", "audrey"])
def test_every_member_creates_a_token_and_sees_it_once(page_as, name):
    client = page_as(name)
    response = create(client)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    secret = secret_in(response)
    assert bearer(secret).get("/api/v1/me/").json()["user"]["email"].startswith(name)
    listed = client.get("/account/tokens/")
    assert secret.encode() not in listed.content
    assert secret[:12].encode() in listed.content


def test_a_read_scoped_token_from_the_page_cannot_write(page_as):
    secret = secret_in(create(page_as("alice"), scope="read"))
    response = bearer(secret).post("/api/v1/members/", {"email": "x@acme.test", "role": "member"},
                                   format="json")
    assert response.status_code == 403
    write = secret_in(create(page_as("alice"), scope="write", name="ci"))
    assert bearer(write).post("/api/v1/members/", {"email": "x@acme.test", "role": "member"},
                              format="json").status_code == 201


def test_a_token_expires_after_the_days_chosen(page_as, bob):
    from datetime import timedelta

    from django.utils import timezone

    create(page_as("bob"), expires_in_days=7)
    token = ApiToken.objects.get(user=bob)
    assert timezone.now() + timedelta(days=6) < token.expires_at < timezone.now() + timedelta(days=8)
    assert create(page_as("bob"), expires_in_days=400).status_code == 400


def test_revoking_on_the_page_stops_the_token_at_once(page_as, bob):
    client = page_as("bob")
    secret = secret_in(create(client))
    api = bearer(secret)
    assert api.get("/api/v1/me/").status_code == 200
    token = ApiToken.objects.get(user=bob)
    assert client.post(f"/account/tokens/{token.id}/revoke/").status_code == 302
    assert api.get("/api/v1/me/").status_code == 401


def test_members_cannot_revoke_each_others_tokens_but_admins_can(world, page_as):
    factories.token_client(world.bob, world.acme)
    token = ApiToken.objects.get(user=world.bob)
    assert page_as("vera").post(f"/account/tokens/{token.id}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    alice_page = page_as("alice").get("/account/tokens/")
    assert b"bob@acme.test" in alice_page.content
    assert page_as("alice").post(f"/account/tokens/{token.id}/revoke/").status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_a_globex_token_is_404_for_alice(world, page_as):
    factories.token_client(world.charlie, world.globex)
    theirs = ApiToken.objects.get(user=world.charlie)
    assert page_as("alice").post(f"/account/tokens/{theirs.id}/revoke/").status_code == 404


def last_used_cell(html: str, name: str) -> str:
    row = re.search(r'<tr data-testid="token-row">\s*<td>' + re.escape(name) + r"</td>.*?</tr>", html, re.S)
    assert row, f"a row for the token {name}"
    return re.findall(r'<td class="nowrap">([^<]*)</td>', row.group(0))[1]


def test_last_used_is_noted_per_request_without_a_database_write_and_flushed_by_the_task(page_as):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tenants.tasks import tokens_last_used_flush

    bob = page_as("bob")
    secret = secret_in(create(bob, name="ci"))
    assert last_used_cell(bob.get("/account/tokens/").content.decode(), "ci") == "—"

    with CaptureQueriesContext(connection) as queries:
        assert bearer(secret).get("/api/v1/me/").status_code == 200
        assert bearer(secret).get("/api/v1/me/").status_code == 200
    assert not [q["sql"] for q in queries if q["sql"].startswith("UPDATE") and "apitoken" in q["sql"]]
    assert ApiToken.objects.get(name="ci").last_used_at is None

    assert tokens_last_used_flush() == 1

    used = ApiToken.objects.get(name="ci").last_used_at
    assert used is not None
    assert last_used_cell(bob.get("/account/tokens/").content.decode(), "ci") == f"{used:%Y-%m-%d %H:%M}"
    assert tokens_last_used_flush() == 0  # nothing new since


def test_the_flush_runs_every_minute_from_the_scheduler():
    from django.conf import settings

    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values()
               if e["task"] == "tenants.tokens_last_used_flush"]
    assert [e["schedule"] for e in entries] == [60.0]


def test_a_flush_finishes_notes_an_earlier_flush_was_killed_holding(page_as):
    from tenants.limits import gate
    from tenants.services import api_tokens_last_used_flush

    secret = secret_in(create(page_as("bob"), name="ci"))
    assert bearer(secret).get("/api/v1/me/").status_code == 200
    key = gate.tokens_used_key()
    gate.client().rename(key, f"{key}:taken:killed-flush")  # taken, then the flush died

    assert api_tokens_last_used_flush() == 1
    assert ApiToken.objects.get(name="ci").last_used_at is not None
    assert not list(gate.client().scan_iter(match=f"{key}*"))


def test_the_new_token_has_a_copy_button_that_needs_no_inline_script(page_as):
    html = create(page_as("bob")).content.decode()
    assert 'data-copy="new-token-secret"' in html
    assert 'id="new-token-secret" data-testid="token-secret"' in html
    assert "onclick" not in html


def test_alices_own_token_is_not_called_missing_in_the_other_members_list(page_as):
    alice = page_as("alice")
    create(alice, name="laptop")
    html = alice.get("/account/tokens/").content.decode()
    others = html.split('data-testid="all-tokens"')[1]
    assert "No other member has a token." in others
    assert "No tokens yet" not in html
    assert "Everyone&#x27;s tokens" not in html and "Everyone's tokens" not in html
