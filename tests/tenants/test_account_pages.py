"""Sign-in, sign-out and password pages (tenants/views/accounts.py) as the named people see them,
and the rule that a non-member gets 404 on every page of a workspace."""

import pytest

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


def test_dana_sees_a_workspace_switcher_listing_both_tenants(page_as):
    response = page_as("dana").get("/")
    html = response.content.decode()
    assert 'data-testid="workspace-switcher"' in html
    assert "Globex Corporation" in html
    assert 'action="/switch/globex/"' in html  # handed over without signing in again


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
