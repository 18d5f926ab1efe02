"""Usage sync (tenants/limits/metering.py): Redis daily counts -> UsageDaily, once each, under faults."""

import datetime as dt

import pytest
from django.db.models import Sum

from tenants.limits import gate, metering
from tenants.models import UsageDaily

pytestmark = pytest.mark.django_db


def _rows_in_database(world) -> int:
    return UsageDaily.objects.filter(tenant=world.acme).aggregate(n=Sum("predicted_rows"))["n"] or 0


class _SecondSyncAfterFirstTake:
    """A Redis client on which, right after the first sync has taken its counts and before it reads
    them, more rows are counted and a second sync runs from start to end."""

    def __init__(self, real, world):
        self._real, self._world, self._done = real, world, False

    def __getattr__(self, name):
        return getattr(self._real, name)

    def hgetall(self, key):
        if not self._done:
            self._done = True
            metering.count_predictions(tenant_id=self._world.acme.id, user_id=self._world.bob.pk, rows=5)
            metering.sync_to_database()
        return self._real.hgetall(key)


def test_two_syncs_at_once_lose_no_count_and_add_none_twice(world, monkeypatch):
    real = gate.client()
    metering.count_predictions(tenant_id=world.acme.id, user_id=world.bob.pk, rows=7)
    proxy = _SecondSyncAfterFirstTake(real, world)
    monkeypatch.setattr(gate, "client", lambda: proxy)

    metering.sync_to_database()
    metering.sync_to_database()

    assert _rows_in_database(world) == 12


def test_counts_taken_by_a_sync_that_died_are_stored_by_a_later_sync(world, monkeypatch):
    redis = gate.client()
    metering.count_predictions(tenant_id=world.acme.id, user_id=world.bob.pk, rows=7)
    key = gate.usage_keys(world.acme.id, dt.datetime.now(dt.UTC))["pred_day"]
    long_ago = metering.time.time() - metering.STRANDED_AFTER - 1
    monkeypatch.setattr(metering.time, "time", lambda: long_ago)
    metering._take(redis, key)  # ...and the process is killed here
    monkeypatch.undo()
    metering.count_predictions(tenant_id=world.acme.id, user_id=world.bob.pk, rows=5)

    metering.sync_to_database()
    metering.sync_to_database()

    assert _rows_in_database(world) == 12
    assert redis.zcard(metering._taken_registry()) == 0


def test_counts_a_running_sync_has_just_taken_are_left_to_it(world):
    redis = gate.client()
    metering.count_predictions(tenant_id=world.acme.id, user_id=world.bob.pk, rows=7)
    key = gate.usage_keys(world.acme.id, dt.datetime.now(dt.UTC))["pred_day"]
    taken = metering._take(redis, key)

    metering.sync_to_database()

    assert _rows_in_database(world) == 0
    assert redis.hgetall(taken) == {str(world.bob.pk).encode(): b"7"}
