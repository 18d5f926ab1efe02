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
