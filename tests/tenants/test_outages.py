"""Outages of PostgreSQL or Redis (tenants/web/outages.py): 503 with Retry-After, never a traceback,
and the service recovers by itself when the dependency is back. Also: no Django debug page, ever."""

import importlib
import socket

import pytest
from django import db
from django.test import Client

from tenants.accounts import access
from tenants.limits import gate
from tests import factories

pytestmark = pytest.mark.django_db


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _forget_gate_connections() -> None:
    gate.client.cache_clear()
    gate._local.conn = None


@pytest.fixture
def redis_down(settings):
    """Point the gate at a port where nothing listens; put it back afterwards."""
    real = settings.REDIS_URL
    settings.REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    _forget_gate_connections()
    yield
    settings.REDIS_URL = real
    _forget_gate_connections()


def _as_in_production(client):
    # The test client re-raises a view's exception by default; a server answers it instead.
    client.raise_request_exception = False
    return client


def _assert_api_unavailable(response, dependency: str) -> None:
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response["Retry-After"] == "5"
    body = response.json()
    assert body["type"] == "/problems/service-unavailable"
    assert body["status"] == 503
    assert dependency in body["detail"]
    assert b"Traceback" not in response.content


def _assert_page_unavailable(response) -> None:
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert response["Retry-After"] == "5"
    assert b"Temporarily unavailable" in response.content
    assert b"Traceback" not in response.content


def test_an_api_call_gets_a_503_problem_while_redis_is_down(api_as, redis_down):
    bob = _as_in_production(api_as("bob"))
    _assert_api_unavailable(bob.get("/api/v1/datasets/"), "Redis")


def test_the_api_recovers_by_itself_when_redis_is_back(api_as):
    bob = _as_in_production(api_as("bob"))
    conn = gate._connection()
    real_port = conn.port
    conn.disconnect()
    conn.port = _closed_port()  # Redis stops
    try:
        assert bob.get("/api/v1/datasets/").status_code == 503
    finally:
        conn.port = real_port  # ...and comes back: nothing is reset, the next call reconnects
    assert bob.get("/api/v1/datasets/").status_code == 200


def test_a_page_gets_the_unavailable_page_while_redis_is_down(page_as, redis_down):
    bob = _as_in_production(page_as("bob"))
    _assert_page_unavailable(bob.get("/datasets/"))


def _database_down(monkeypatch):
    def refuse(hostname):
        raise db.OperationalError("connection to server at 127.0.0.1, port 5432 failed")

    access.forget_tenant_hosts()
    monkeypatch.setattr(access, "tenant_for_host", refuse)


def test_an_api_call_gets_a_503_problem_while_the_database_is_down(api_as, monkeypatch):
    bob = _as_in_production(api_as("bob"))
    _database_down(monkeypatch)
    _assert_api_unavailable(bob.get("/api/v1/datasets/"), "database")
    monkeypatch.undo()
    assert bob.get("/api/v1/datasets/").status_code == 200


def test_a_page_gets_the_unavailable_page_while_the_database_is_down(page_as, monkeypatch):
    bob = _as_in_production(page_as("bob"))
    _database_down(monkeypatch)
    _assert_page_unavailable(bob.get("/datasets/"))
    monkeypatch.undo()
    assert bob.get("/datasets/").status_code == 200


def test_an_api_view_that_loses_the_database_answers_the_same_problem(api_as, monkeypatch):
    from mlcore.apis import datasets

    bob = _as_in_production(api_as("bob"))

    def lost(**kwargs):
        raise db.InterfaceError("connection already closed")

    # Raised inside the DRF view: DRF's exception handler maps it, not Django's handler500.
    monkeypatch.setattr(datasets, "dataset_list", lost)
    _assert_api_unavailable(bob.get("/api/v1/datasets/"), "database")


def test_local_settings_do_not_show_djangos_debug_pages_by_default(monkeypatch):
    monkeypatch.delenv("DJANGO_DEBUG", raising=False)
    local = importlib.reload(importlib.import_module("portal.settings.local"))
    assert local.DEBUG is False


def test_an_unknown_url_on_a_tenant_host_is_the_products_404_page(anon):
    response = anon.get("/no/such/page/")
    assert response.status_code == 404
    assert b"The page you asked for does not exist." in response.content
    assert b"URLconf" not in response.content


def test_a_server_error_is_the_products_500_page(page_as, monkeypatch):
    bob = _as_in_production(page_as("bob"))

    def broken(hostname):
        raise RuntimeError("a bug")

    access.forget_tenant_hosts()
    monkeypatch.setattr(access, "tenant_for_host", broken)
    response = bob.get("/datasets/")
    assert response.status_code == 500
    assert b"Something went wrong" in response.content
    assert b"Traceback" not in response.content


def test_the_public_site_uses_the_products_404_page():
    response = Client(HTTP_HOST=factories.host(None)).get("/no/such/page/")
    assert response.status_code == 404
    assert b"The page you asked for does not exist." in response.content
