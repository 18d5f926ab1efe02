"""Pages of tenants/views.py, as the named people see them."""

import re

import pytest
from django.test import Client

from tests import factories

pytestmark = pytest.mark.django_db

ACME_PAGES = ["/", "/members/", "/account/password/", "/api/v1/me/", "/api/v1/members/",
              "/api/v1/usage/"]


def test_alice_signs_in_and_sees_her_workspace_and_role(anon, acme):
    response = anon.post("/login/", {"email": "alice@acme.test", "password": factories.PASSWORD})
    assert response.status_code == 302
    page = anon.get(response["Location"])
    assert page.status_code == 200
    assert b'data-testid="tenant-name">Acme Corp<' in page.content
    assert b'data-testid="role-badge">admin<' in page.content


def test_a_wrong_password_is_refused_with_a_clear_message(anon):
    response = anon.post("/login/", {"email": "alice@acme.test", "password": "nope"})
    assert response.status_code == 400
    assert b"do not match an account" in response.content


def test_charlie_cannot_sign_in_to_acme(anon):
    response = anon.post("/login/", {"email": "charlie@globex.test", "password": factories.PASSWORD})
    assert response.status_code == 400
    assert b"no access to this workspace" in response.content
    assert anon.get("/").status_code == 302  # still a visitor


def test_login_does_not_redirect_to_another_site(anon):
    response = anon.post("/login/?next=https://evil.example/", {"email": "bob@acme.test",
                                                                 "password": factories.PASSWORD})
    assert response["Location"] == "/"


@pytest.mark.parametrize("path", ACME_PAGES)
def test_charlie_gets_404_on_every_acme_page(world, path):
    # Charlie's own (globex) session, sent to acme's host.
    client = factories.logged_in_client(world.charlie, world.globex)
    response = client.get(path, HTTP_HOST="acme.localhost")
    assert response.status_code == 404


@pytest.mark.parametrize("path", ACME_PAGES)
def test_a_session_of_charlie_bound_to_acme_still_gets_404(world, path):
    client = factories.logged_in_client(world.charlie, world.acme)
    assert client.get(path).status_code == 404


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
    link = re.search(r"http://acme\.localhost(?::\d+)?(/account/set-password/\S+/)", outbox[0].body).group(1)
    assert link.encode() in response.content  # shown to the admin too

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


def test_dana_sees_a_workspace_switcher_listing_both_tenants(page_as):
    response = page_as("dana").get("/")
    html = response.content.decode()
    assert 'data-testid="workspace-switcher"' in html
    assert "Globex Corporation" in html
    assert "http://globex.localhost" in html


def test_bob_sees_no_workspace_switcher(page_as):
    assert b"workspace-switcher" not in page_as("bob").get("/").content


def test_logout_ends_the_session(page_as):
    bob = page_as("bob")
    assert bob.post("/logout/").status_code == 302
    assert bob.get("/").status_code == 302


def test_bob_changes_his_password(page_as, world):
    bob = page_as("bob")
    response = bob.post("/account/password/", {"old_password": factories.PASSWORD,
                                                "new_password1": "another-long-passphrase",
                                                "new_password2": "another-long-passphrase"})
    assert response.status_code == 302
    world.bob.refresh_from_db()
    assert world.bob.check_password("another-long-passphrase")


def test_a_weak_new_password_is_refused(page_as):
    response = page_as("bob").post("/account/password/", {"old_password": factories.PASSWORD,
                                                            "new_password1": "12345678",
                                                            "new_password2": "12345678"})
    assert response.status_code == 200
    assert b"too short" in response.content or b"too common" in response.content


def test_forgot_password_mails_a_link_only_to_members_of_this_tenant(anon, outbox):
    anon.post("/account/password-reset/", {"email": "bob@acme.test"})
    anon.post("/account/password-reset/", {"email": "charlie@globex.test"})
    assert [m.to for m in outbox] == [["bob@acme.test"]]
    assert "http://acme.localhost" in outbox[0].body
