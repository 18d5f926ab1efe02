"""Host routing, health probes and the membership gate (tenants/web/middleware.py)."""

import pytest
from django.test import Client

from tests import factories

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("host", ["nope.localhost", "acme.nope.localhost", "evil.example", "127.0.0.1"])
def test_an_unknown_host_gets_a_plain_404(host):
    response = Client(HTTP_HOST=host).get("/")
    assert response.status_code == 404
    assert b"Acme" not in response.content
    assert b"Not found" in response.content


def test_the_public_site_shows_the_landing_page(public_client):
    response = public_client.get("/")
    assert response.status_code == 200
    assert b"Go to your workspace" in response.content


def test_the_workspace_form_sends_you_to_your_tenants_login(public_client):
    response = public_client.post("/", {"slug": "acme"})
    assert response.status_code == 302
    assert response["Location"].startswith("http://acme.localhost")
    assert response["Location"].endswith("/login/")


def test_the_workspace_form_says_when_no_workspace_has_that_name(public_client):
    response = public_client.post("/", {"slug": "initech"})
    assert response.status_code == 200
    assert b"There is no workspace called" in response.content


@pytest.mark.parametrize("host", ["localhost", "acme.localhost", "nope.localhost", "evil.example"])
def test_healthz_answers_on_any_host_and_reveals_nothing(host):
    response = Client(HTTP_HOST=host).get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_database_and_redis():
    response = Client(HTTP_HOST="acme.localhost").get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


def test_readyz_answers_503_when_redis_is_down(settings, monkeypatch):
    from tenants.limits import gate

    class Down:
        def ping(self):
            raise ConnectionError("redis down")

    monkeypatch.setattr(gate, "client", lambda: Down())
    response = Client(HTTP_HOST="localhost").get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"] == "unavailable"


def test_an_anonymous_visitor_is_sent_to_the_login_page(anon):
    response = anon.get("/members/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/members/")


def test_a_session_opened_on_acme_is_not_accepted_on_globex(world):
    client = factories.logged_in_client(world.dana, world.acme)
    assert client.get("/", HTTP_HOST="acme.localhost").status_code == 200
    # Dana is a member of globex too: the session alone must still not carry over.
    response = client.get("/", HTTP_HOST="globex.localhost")
    assert response.status_code == 404
    response = client.get("/api/v1/me/", HTTP_HOST="globex.localhost")
    assert response.status_code == 404


def test_a_tenant_session_is_not_accepted_on_the_public_site(world):
    client = factories.logged_in_client(world.ops, world.acme)
    client.defaults["HTTP_HOST"] = "localhost"
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_a_removed_member_gets_404_and_loses_the_session(world, page_as):
    from tenants.models import Membership
    from tenants.services import membership_remove

    bob = page_as("bob")
    assert bob.get("/").status_code == 200
    membership_remove(membership=Membership.objects.get(user=world.bob, tenant=world.acme), actor=world.alice)
    assert bob.get("/").status_code == 404
    assert bob.get("/").status_code == 302  # the session was ended: now just a visitor


def test_responses_carry_a_request_id(anon):
    response = anon.get("/login/", HTTP_X_REQUEST_ID="abc123")
    assert response["X-Request-Id"] == "abc123"


def _frozen_minute(monkeypatch, minute: int):
    """Rate windows are per UTC minute: pin the clock so the test cannot straddle two."""
    import datetime as dt

    from tenants.limits import gate

    fixed = dt.datetime(2031, 1, 1, 12, minute, 30, tzinfo=dt.UTC)

    class Clock(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return fixed

    monkeypatch.setattr(gate, "datetime", Clock)


def test_api_calls_over_the_workspace_rate_limit_get_429_with_retry_after(api_as, page_as, acme,
                                                                          monkeypatch):
    from tenants.limits.quotas import tenant_limits_set

    _frozen_minute(monkeypatch, 7)
    tenant_limits_set(tenant=acme, overrides={"api_requests_per_minute": 3})
    bob = api_as("bob")
    statuses = [bob.get("/api/v1/me/").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    response = bob.get("/api/v1/me/")
    assert response["Retry-After"] == "30"
    assert response.json()["type"].endswith("rate-limited")
    assert "3 API requests per minute" in response.json()["detail"]
    assert page_as("bob").get("/").status_code == 200  # pages are not API calls


def test_a_members_own_rate_limit_applies_inside_the_workspaces(api_as, world, monkeypatch):
    from tenants.models import Membership
    from tenants.services import membership_update

    _frozen_minute(monkeypatch, 9)
    membership_update(membership=Membership.objects.get(user=world.bob, tenant=world.acme),
                      limits={"api_requests_per_minute": 2}, actor=world.alice)
    bob, dana = api_as("bob"), api_as("dana")
    assert [bob.get("/api/v1/me/").status_code for _ in range(3)] == [200, 200, 429]
    detail = bob.get("/api/v1/me/").json()["detail"]
    assert "for you" in detail
    assert detail.endswith("Ask Alice (alice@acme.test) to raise your limit.")
    assert dana.get("/api/v1/me/").status_code == 200


def test_a_plan_change_applies_on_the_next_request(api_as, acme, monkeypatch):
    from tenants.limits.quotas import plan_changed

    _frozen_minute(monkeypatch, 11)
    bob = api_as("bob")
    assert bob.get("/api/v1/me/").status_code == 200
    plan = acme.plan
    plan.api_requests_per_minute = 1
    plan.save()
    plan_changed(plan)
    assert bob.get("/api/v1/me/").status_code == 429


# --- bearer-token API calls skip the page machinery (sessions, messages) ---------------------
def test_a_bearer_token_call_is_the_tokens_user_whatever_session_it_carries(world, page_as):
    from tenants.services import api_token_create

    _, secret = api_token_create(user=world.dana, tenant=world.acme, name="t", scope="read", days=1)
    bob_browser = page_as("bob")
    response = bob_browser.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 200
    assert response.json()["user"]["email"] == "dana@example.test"
    assert not response.cookies  # the session was neither read nor saved
    # A bad token is refused: never a fall-back to the session.
    assert bob_browser.get("/api/v1/me/", HTTP_AUTHORIZATION="Bearer mlp_nope").status_code == 401
    assert bob_browser.get("/api/v1/me/").json()["user"]["email"] == "bob@acme.test"


def test_bearer_api_calls_still_get_the_security_headers(api_as):
    response = api_as("bob").get("/api/v1/me/")
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Request-Id"]


@pytest.mark.parametrize("host", ["nope.localhost", "acme.nope.localhost", "evil.example"])
def test_an_unknown_hosts_404_links_to_the_public_sites_start_page(host):
    from tenants.accounts.hosts import public_url

    response = Client(HTTP_HOST=host).get("/some/page/")
    assert response.status_code == 404
    assert f'href="{public_url("/")}" data-testid="start-page"'.encode() in response.content
    assert public_url("/").startswith("http://localhost")


def test_a_missing_page_on_a_known_host_links_to_that_hosts_start_page(page_as, public_client):
    for client in (page_as("bob"), public_client):
        response = client.get("/no/such/page/")
        assert response.status_code == 404
        assert b'href="/" data-testid="start-page"' in response.content
        assert b"Django" not in response.content and b"URLconf" not in response.content
