"""Test set-up: the platform and two tenants are created once per session, not per test.

Named people: Alice administers acme, Bob is a member, Vera a viewer, Audrey
its auditor; Charlie administers globex; Dana is a member of both. Each test runs in a transaction
that is rolled back (the `db` fixture), so the tenants stay clean between tests. Tests that need
rows another process can see (a real worker, a browser) use the `committed` fixture instead.
"""

from __future__ import annotations

import shutil

import pytest
from django.conf import settings
from django.core import mail
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from tests import factories

PEOPLE = factories.PEOPLE


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_blocker):
    """Create and migrate the test database, then add the platform and the people.

    Replaces pytest-django's fixture, which sets up no database when only browser or `committed`
    tests (no django_db marker) are selected.
    """
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
        factories.build_world()
    yield
    with django_db_blocker.unblock():
        # Servers and workers started by tests may still hold connections to the test database.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        teardown_databases(config, verbosity=0)
    shutil.rmtree(settings.PORTAL_STORAGE_DIR, ignore_errors=True)


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    """In-process lookups (host, token, membership) must not leak from one test to the next."""
    from mlcore.sampling import online_samples
    from tenants.accounts import access
    from tenants.limits import quotas

    access.forget_cached_credentials()
    quotas.forget_cached_limits()
    online_samples.discard()
    _forget_redis_counters()
    yield
    access.forget_cached_credentials()
    quotas.forget_cached_limits()
    online_samples.discard()
    connection.set_schema_to_public()


@pytest.fixture(autouse=True)
def _own_audit_witnesses():
    """Signed checkpoints are files outside the database (tenants/auditing/witness.py): a test's
    checkpoints would outlive its rolled-back entries and accuse the next test's chain.

    Set on the settings themselves, not through pytest-django's `settings` fixture, whose override
    would hide SETTINGS_MODULE from every test (tests/portal/test_pytest_harness.py)."""
    import uuid

    saved = settings.PORTAL_AUDIT_WITNESS_DIR
    settings.PORTAL_AUDIT_WITNESS_DIR = str(settings.PORTAL_STORAGE_DIR / "_audit-witness-tests" / uuid.uuid4().hex)
    yield
    settings.PORTAL_AUDIT_WITNESS_DIR = saved


def _forget_redis_counters() -> None:
    """Usage and audit counters live in Redis, outside the test's rolled-back transaction."""
    from tenants.limits import gate, metering

    metering.online_buffer.discard()
    client = gate.client()
    prefix = gate._prefix()
    # ...and so does Django's cache (keys are "<schema>:<prefix>:<version>:<key>").
    for pattern in (f"{prefix}:use:*", f"{prefix}:audit:online:*", f"{prefix}:tok:*", f"*:{prefix}:*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
def transactional_db():
    raise RuntimeError(
        "Django's transactional_db flushes every table, including the session's tenants. "
        "Use the `committed` fixture (tests/conftest.py) for tests that need committed rows."
    )


@pytest.fixture
def committed(django_db_setup, django_db_blocker):
    """Database access without a wrapping transaction: for real workers and browsers.

    Whatever the test commits in tenant schemas is removed afterwards (see factories.wipe_data).
    """
    with django_db_blocker.unblock():
        yield
        factories.wipe_data()


@pytest.fixture
def world(request):
    """The session's tenants and people; inside a rolled-back transaction unless the test asked
    for `committed` rows (real workers and browsers must see them)."""
    request.getfixturevalue("committed" if "committed" in request.fixturenames else "db")
    return factories.world()


@pytest.fixture
def acme(world):
    return world.acme


@pytest.fixture
def globex(world):
    return world.globex


@pytest.fixture
def alice(world):
    return world.alice


@pytest.fixture
def bob(world):
    return world.bob


@pytest.fixture
def vera(world):
    return world.vera


@pytest.fixture
def audrey(world):
    return world.audrey


@pytest.fixture
def charlie(world):
    return world.charlie


@pytest.fixture
def dana(world):
    return world.dana


@pytest.fixture
def outbox():
    mail.outbox = []
    return mail.outbox


@pytest.fixture
def anon():
    """An anonymous browser on acme's host."""
    return Client(HTTP_HOST=factories.host("acme"))


@pytest.fixture
def public_client():
    return Client(HTTP_HOST=factories.host(None))


def _page_client(world, name: str, tenant_slug: str | None = None) -> Client:
    user = getattr(world, name)
    slug = tenant_slug or factories.HOME_TENANT[name]
    return factories.logged_in_client(user, getattr(world, slug))


def _api_client(world, name: str, tenant_slug: str | None = None, scope: str = "write") -> APIClient:
    user = getattr(world, name)
    slug = tenant_slug or factories.HOME_TENANT[name]
    return factories.token_client(user, getattr(world, slug), scope=scope)


@pytest.fixture
def page_as(world):
    """page_as("alice") -> a Django test client logged in on Alice's tenant host."""
    return lambda name, tenant=None: _page_client(world, name, tenant)


@pytest.fixture
def api_as(world):
    """api_as("bob") -> an API client with a write-scoped bearer token of Bob in acme."""
    return lambda name, tenant=None, scope="write": _api_client(world, name, tenant, scope)


@pytest.fixture
def worker(committed):
    """A real Celery worker (forked job processes) on this run's queues and test database."""
    from tests.servers import Worker

    process = Worker("worker")
    yield process
    process.stop()
