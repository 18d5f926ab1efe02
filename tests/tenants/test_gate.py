"""The request gate (tenants/limits/gate.py): one Redis round trip per API call, robust to Redis restarts."""

import pytest

from tenants.limits import gate

pytestmark = pytest.mark.django_db


def test_api_calls_go_on_after_redis_drops_the_gates_connection(api_as):
    bob = api_as("bob")
    assert bob.get("/api/v1/me/").status_code == 200
    conn = gate._connection()
    conn.send_command("CLIENT", "ID")
    gate.client().client_kill_filter(_id=conn.read_response())  # as a Redis restart would
    assert bob.get("/api/v1/me/").status_code == 200


def test_the_gate_loads_its_script_when_redis_does_not_know_it(api_as, monkeypatch):
    import hashlib

    # A variant of the script Redis has never seen: what it looks like after a restart.
    lua = gate._GATE_LUA + f"-- {hashlib.sha256(str(id(monkeypatch)).encode()).hexdigest()}\n"
    monkeypatch.setattr(gate, "_GATE_LUA", lua)
    monkeypatch.setattr(gate, "_GATE_SHA", hashlib.sha1(lua.encode()).hexdigest())  # noqa: S324
    bob = api_as("bob")
    assert [bob.get("/api/v1/me/").status_code for _ in range(2)] == [200, 200]


def test_the_gate_counts_each_call_once_in_its_minute_window(world, monkeypatch):
    import datetime as dt

    fixed = dt.datetime(2031, 1, 1, 12, 13, 30, tzinfo=dt.UTC)

    class Clock(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return fixed

    monkeypatch.setattr(gate, "datetime", Clock)
    counts = [gate.check(world.bob.pk, world.acme.id, count_api=True) for _ in range(2)]
    assert [(c.tenant_requests, c.member_requests, c.retry_after) for c in counts] == [(1, 1, 30), (2, 2, 30)]
    assert gate.check(world.bob.pk, world.acme.id, count_api=False).tenant_requests == 0
    assert gate.requests_this_minute(world.acme.id) == 2
    fixed = fixed + dt.timedelta(minutes=1)
    assert gate.check(world.bob.pk, world.acme.id, count_api=True).tenant_requests == 1


def test_the_gate_returns_the_members_own_predicted_rows_of_the_month(world):
    from tenants.limits import metering

    metering.count_predictions(tenant_id=world.acme.id, user_id=world.bob.pk, rows=7)
    metering.count_predictions(tenant_id=world.acme.id, user_id=world.alice.pk, rows=5)

    result = gate.check(world.bob.pk, world.acme.id, count_api=False)

    assert (result.month_predicted_rows, result.member_month_predicted_rows) == (12, 7)


def test_online_rows_reach_the_members_counter_when_the_buffer_flushes(world):
    from tenants.limits import metering

    metering.online_buffer.add(tenant_id=world.acme.id, user_id=world.bob.pk, token_id=None, version_id=1,
                               rows=3)
    assert gate.check(world.bob.pk, world.acme.id, count_api=False).member_month_predicted_rows == 0
    metering.online_buffer.flush()
    assert gate.check(world.bob.pk, world.acme.id, count_api=False).member_month_predicted_rows == 3


def test_a_members_month_is_seeded_from_postgresql_after_redis_lost_it(world):
    from django.utils import timezone

    from tenants.limits import metering
    from tenants.models import UsageDaily

    UsageDaily.objects.create(tenant=world.acme, user=world.bob, day=timezone.now().date(), predicted_rows=40)
    UsageDaily.objects.create(tenant=world.acme, user=world.alice, day=timezone.now().date(), predicted_rows=2)

    metering.sync_to_database()

    result = gate.check(world.bob.pk, world.acme.id, count_api=False)
    assert (result.month_predicted_rows, result.member_month_predicted_rows) == (42, 40)
