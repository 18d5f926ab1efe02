"""Switching workspace: Dana (member of acme and globex) signs in once; sessions stay per tenant."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from tenants.models import AuditEvent
from tests.tenants.test_authentication import code_for, enrol, sign_in

pytestmark = pytest.mark.django_db


def globex_browser() -> Client:
    return Client(HTTP_HOST="globex.localhost")


def switch(client, slug: str = "globex") -> str:
    """Dana picks another workspace in the menu: the ticket her session is handed over with."""
    response = client.post(f"/switch/{slug}/")
    assert response.status_code == 302, response.status_code
    location = urlsplit(response["Location"])
    assert (location.hostname, location.path) == (f"{slug}.localhost", "/login/handoff/")
    return parse_qs(location.query)["ticket"][0]


def test_dana_switches_to_globex_without_signing_in_again(page_as, globex):
    acme_tab = page_as("dana")
    menu = acme_tab.get("/").content.decode()
    assert 'action="/switch/globex/"' in menu
    ticket = switch(acme_tab)

    globex_tab = globex_browser()
    arrived = globex_tab.get(f"/login/handoff/?ticket={ticket}")
    assert arrived.status_code == 302 and arrived["Location"] == "/"
    home = globex_tab.get("/")
    assert home.status_code == 200
    assert b"Globex" in home.content
    entry = AuditEvent.objects.filter(tenant_id=globex.id, action="auth.login").latest("seq")
    assert (entry.actor_email, entry.details) == ("dana@example.test",
                                                  {"via": "workspace switch", "from": "acme"})
    # Sessions stay bound to their tenant: the acme session is still acme's only.
    assert acme_tab.get("/").status_code == 200


def test_a_ticket_works_once_only_on_its_own_host_and_not_after_a_minute(page_as, monkeypatch):
    from tenants.accounts import handoff

    acme_tab = page_as("dana")
    ticket = switch(acme_tab)
    assert globex_browser().get(f"/login/handoff/?ticket={ticket}")["Location"] == "/"
    again = globex_browser()
    assert again.get(f"/login/handoff/?ticket={ticket}")["Location"] == "/login/"
    assert again.get("/").status_code == 302  # not signed in

    elsewhere = Client(HTTP_HOST="acme.localhost")  # a globex ticket is not acme's
    assert elsewhere.get(f"/login/handoff/?ticket={switch(acme_tab)}")["Location"] == "/login/"
    assert elsewhere.get("/").status_code == 302

    monkeypatch.setattr(handoff, "TICKET_SECONDS", 1)
    late = switch(acme_tab)
    time.sleep(1.2)
    stale = globex_browser()
    assert stale.get(f"/login/handoff/?ticket={late}")["Location"] == "/login/"
    assert stale.get("/").status_code == 302

    forged = globex_browser()
    assert forged.get("/login/handoff/?ticket=not-a-ticket")["Location"] == "/login/"
    assert forged.get("/").status_code == 302


def test_bob_cannot_switch_to_a_workspace_he_does_not_belong_to(page_as):
    bob = page_as("bob")
    assert b"/switch/" not in bob.get("/").content  # only acme in his menu
    assert bob.post("/switch/globex/").status_code == 404
    assert bob.post("/switch/initech-does-not-exist/").status_code == 404
    assert bob.get("/switch/globex/").status_code == 405


def test_a_member_removed_from_globex_meanwhile_is_not_let_in(page_as, world):
    from tenants.models import Membership
    from tenants.services import membership_remove

    ticket = switch(page_as("dana"))
    membership_remove(membership=Membership.objects.get(user=world.dana, tenant=world.globex),
                      actor=world.charlie)
    tab = globex_browser()
    assert tab.get(f"/login/handoff/?ticket={ticket}")["Location"] == "/login/"
    assert tab.get("/").status_code == 302


def test_a_second_factor_given_on_acme_carries_over_and_one_not_given_is_asked(page_as, world, globex,
                                                                               settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    device = enrol(page_as("dana"))  # Dana turns two-factor sign-in on

    # Signed in on acme with her code: globex opens at once.
    acme_tab = Client(HTTP_HOST="acme.localhost")
    sign_in(acme_tab, "dana@example.test")
    assert acme_tab.post("/login/two-factor/", {"code": code_for(device, offset=1)}).status_code == 302
    globex_tab = globex_browser()
    assert globex_tab.get(f"/login/handoff/?ticket={switch(acme_tab)}")["Location"] == "/"
    assert globex_tab.get("/").status_code == 200
    entry = AuditEvent.objects.filter(tenant_id=globex.id, action="auth.login").latest("seq")
    assert entry.details["second_factor"] == "carried"

    # A session that never gave a code (signed in before she turned it on) must give one on globex.
    unverified = page_as("dana")
    other_tab = globex_browser()
    assert other_tab.get(f"/login/handoff/?ticket={switch(unverified)}")["Location"] == "/login/two-factor/"
    assert other_tab.get("/").status_code == 302
    assert other_tab.post("/login/two-factor/", {"code": code_for(device, offset=2)}).status_code == 302
    assert other_tab.get("/").status_code == 200
