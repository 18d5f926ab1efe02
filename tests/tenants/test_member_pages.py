"""Member pages (tenants/views/members.py): only admins manage members, as the named people see it."""

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_alice_sees_every_member_with_their_role(page_as):
    response = page_as("alice").get("/members/")
    assert response.status_code == 200
    html = response.content.decode()
    rows = re.findall(r'data-testid="member-row"', html)
    assert len(rows) == 5  # alice, bob, vera, audrey, dana
    for email in ["alice@acme.test", "bob@acme.test", "vera@acme.test", "audrey@acme.test",
                  "dana@example.test"]:
        assert email in html
    assert "charlie@globex.test" not in html


@pytest.mark.parametrize("name", ["bob", "vera", "audrey", "dana"])
def test_only_admins_reach_member_management(page_as, name):
    client = page_as(name)
    assert client.get("/members/").status_code == 403
    home = client.get("/")
    assert b'data-testid="nav-members"' not in home.content
    assert client.post("/members/", {"email": "x@acme.test", "role": "member"}).status_code == 403


def test_alice_invites_a_new_person_who_gets_a_one_time_link(page_as, outbox):
    alice = page_as("alice")
    response = alice.post("/members/", {"email": "erin@acme.test", "role": "member"}, follow=True)
    assert response.status_code == 200
    assert b"one-time link" in response.content
    assert len(outbox) == 1
    assert outbox[0].to == ["erin@acme.test"]
    link = re.search(r"http://acme\.localhost(?::\d+)?(/account/set-password/\S+/)", outbox[0].body).group(1)
    assert link.encode() not in response.content  # the invitee's credential: never on Alice's screen
    assert b"/account/set-password/" not in response.content

    erin = Client(HTTP_HOST="acme.localhost")
    form = erin.get(link, follow=True)
    assert b"Choose your password" in form.content
    done = erin.post(form.redirect_chain[-1][0], {"new_password1": "a-long-new-passphrase",
                                                  "new_password2": "a-long-new-passphrase"})
    assert done.status_code == 302
    again = Client(HTTP_HOST="acme.localhost").get(link, follow=True)
    assert b"This link no longer works" in again.content
    login = erin.post("/login/", {"email": "erin@acme.test", "password": "a-long-new-passphrase"})
    assert login.status_code == 302


def test_adding_an_existing_member_again_is_refused(page_as):
    response = page_as("alice").post("/members/", {"email": "bob@acme.test", "role": "viewer"})
    assert response.status_code == 400
    assert b"already a member" in response.content


def test_adding_someone_with_a_bad_email_shows_the_error_inline(page_as):
    response = page_as("alice").post("/members/", {"email": "not-an-email", "role": "member"})
    assert response.status_code == 400
    assert b"field-error" in response.content


def test_alice_changes_bobs_role(page_as, world):
    from tenants.models import Membership

    bob = Membership.objects.get(user=world.bob, tenant=world.acme)
    response = page_as("alice").post(f"/members/{bob.id}/role/", {"role": "viewer"}, follow=True)
    assert b"is now viewer" in response.content
    bob.refresh_from_db()
    assert bob.role == "viewer"


def test_the_last_admin_cannot_be_demoted_or_removed(page_as, world):
    from tenants.models import Membership

    alice_m = Membership.objects.get(user=world.alice, tenant=world.acme)
    client = page_as("alice")
    response = client.post(f"/members/{alice_m.id}/role/", {"role": "member"}, follow=True)
    assert b"at least one admin" in response.content
    response = client.post(f"/members/{alice_m.id}/remove/", follow=True)
    assert b"at least one admin" in response.content
    alice_m.refresh_from_db()
    assert alice_m.role == "admin"


def test_alice_removes_vera_after_confirming(page_as, world):
    from tenants.models import Membership

    vera = Membership.objects.get(user=world.vera, tenant=world.acme)
    client = page_as("alice")
    confirm = client.get(f"/members/{vera.id}/remove/")
    assert b"Remove vera@acme.test?" in confirm.content
    client.post(f"/members/{vera.id}/remove/")
    assert not Membership.objects.filter(pk=vera.id).exists()


def test_alice_cannot_touch_a_globex_membership_by_id(page_as, world):
    from tenants.models import Membership

    charlie_m = Membership.objects.get(user=world.charlie, tenant=world.globex)
    client = page_as("alice")
    assert client.post(f"/members/{charlie_m.id}/role/", {"role": "viewer"}).status_code == 404
    assert client.post(f"/members/{charlie_m.id}/remove/").status_code == 404
    charlie_m.refresh_from_db()
    assert charlie_m.role == "admin"
