"""Tenant data keys: wrapped by the platform master keys, rotated, destroyed with the tenant."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest

from tenants import services
from tenants.crypto import keys
from tenants.models import TenantKey


def new_master_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


# --- master keys and settings -------------------------------------------------------------------
def test_a_master_key_id_is_the_start_of_its_sha256():
    key = os.urandom(32)
    assert keys.master_key_id(key) == hashlib.sha256(key).hexdigest()[:16]


# Parsing and checking the master keys, the development key and production's refusal: the
# settings do it (tests/portal/test_settings.py).


# --- data keys ----------------------------------------------------------------------------------
def test_every_tenant_has_a_data_key_wrapped_by_the_newest_master_key(acme, globex):
    for tenant in (acme, globex):
        row = TenantKey.objects.get(tenant=tenant)
        assert row.version == 1
        assert row.master_key_id == keys.newest_master_key().id
        assert len(bytes(row.wrapped_key)) == 12 + 32 + 16
        assert keys.current_data_key(tenant)[1] not in bytes(row.wrapped_key)


def test_a_new_tenant_gets_its_data_key_when_it_is_created(world):
    tenant = services.tenant_create(slug="initech", name="Initech", admin_email="peter@initech.test",
                                    notify=False).tenant
    assert keys.key_versions(tenant) == [1]
    assert keys.current_data_key(tenant)[0] == 1


def test_tenants_have_different_data_keys(acme, globex):
    assert keys.current_data_key(acme)[1] != keys.current_data_key(globex)[1]


def test_a_wrapped_key_only_unwraps_for_its_own_tenant_and_version(acme, globex):
    row = TenantKey.objects.get(tenant=acme, version=1)
    master = keys.master_key(row.master_key_id)
    assert keys.unwrap_key(bytes(row.wrapped_key), tenant_id=acme.id, version=1, master=master)
    with pytest.raises(keys.KeyUnavailable, match="does not unwrap"):
        keys.unwrap_key(bytes(row.wrapped_key), tenant_id=globex.id, version=1, master=master)
    with pytest.raises(keys.KeyUnavailable, match="does not unwrap"):
        keys.unwrap_key(bytes(row.wrapped_key), tenant_id=acme.id, version=2, master=master)


def test_unwrapped_keys_are_cached_in_the_process(acme, monkeypatch):
    keys.forget_cached_keys()
    calls = []
    real = keys.unwrap_key
    monkeypatch.setattr(keys, "unwrap_key", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    first = keys.data_key(acme, 1)
    assert keys.data_key(acme, 1) == first
    assert keys.current_data_key(acme) == (1, first)
    assert len(calls) == 1


def test_the_key_cache_is_bounded(acme, globex, monkeypatch):
    keys.forget_cached_keys()
    monkeypatch.setattr(keys, "CACHE_SIZE", 1)
    keys.data_key(acme, 1)
    keys.data_key(globex, 1)
    assert len(keys._cache) == 1


def test_a_new_key_version_becomes_current_and_old_ones_still_unwrap(acme):
    old = keys.data_key(acme, 1)
    assert keys.new_key_version(acme) == 2
    version, current = keys.current_data_key(acme)
    assert version == 2 and current != old
    assert keys.data_key(acme, 1) == old
    assert keys.retire_versions(acme, below=2) == 1
    assert TenantKey.objects.get(tenant=acme, version=1).retired_at is not None
    assert TenantKey.objects.get(tenant=acme, version=2).retired_at is None
    with pytest.raises(keys.UnknownKeyVersion):
        keys.data_key(acme, 3)


# --- master-key rotation ------------------------------------------------------------------------
def test_rewrapping_moves_every_key_under_a_new_master_key_and_keeps_it(settings, acme, globex):
    keys.new_key_version(acme)
    before = {(row.tenant_id, row.version): keys.data_key(row.tenant, row.version)
              for row in TenantKey.objects.select_related("tenant")}
    new = new_master_key()
    settings.PORTAL_MASTER_KEYS = [new, *settings.PORTAL_MASTER_KEYS]

    counts = keys.rewrap_all()

    newest = keys.newest_master_key()
    assert counts["rewrapped"] == len(before) and counts["master_key_id"] == newest.id
    assert set(TenantKey.objects.values_list("master_key_id", flat=True)) == {newest.id}
    assert TenantKey.objects.filter(rewrapped_at__isnull=True).count() == 0
    settings.PORTAL_MASTER_KEYS = [new]  # the old master key can go once rotation is done
    keys.forget_cached_keys()
    assert {(row.tenant_id, row.version): keys.data_key(row.tenant, row.version)
            for row in TenantKey.objects.select_related("tenant")} == before
    assert keys.rewrap_all()["rewrapped"] == 0


def test_rewrapping_one_tenant_leaves_the_others(settings, acme, globex):
    settings.PORTAL_MASTER_KEYS = [new_master_key(), *settings.PORTAL_MASTER_KEYS]
    keys.rewrap_all(tenant=acme)
    newest = keys.newest_master_key().id
    assert TenantKey.objects.get(tenant=acme).master_key_id == newest
    assert TenantKey.objects.get(tenant=globex).master_key_id != newest


def test_a_key_under_a_master_key_that_is_not_configured_is_unavailable(settings, acme):
    keys.data_key(acme, 1)  # cached: must not outlive the master key's removal
    settings.PORTAL_MASTER_KEYS = [new_master_key()]
    with pytest.raises(keys.KeyUnavailable, match="is not configured in PORTAL_MASTER_KEYS"):
        keys.data_key(acme, 1)


# --- crypto-shredding ---------------------------------------------------------------------------
def test_destroying_a_tenants_keys_leaves_nothing_to_unwrap(acme, globex):
    keys.data_key(acme, 1)
    keys.new_key_version(acme)

    assert keys.destroy_tenant_keys(acme) == 2

    assert not TenantKey.objects.filter(tenant=acme).exists()
    assert not [k for k in keys._cache if k[0] == acme.id]
    with pytest.raises(keys.KeyUnavailable, match="destroyed"):
        keys.data_key(acme, 1)
    assert keys.data_key(globex, 1)


def test_deleting_a_tenant_destroys_its_keys(world):
    tenant = services.tenant_create(slug="initech", name="Initech", admin_email="peter@initech.test",
                                    notify=False).tenant
    tenant_id = tenant.id
    services.tenant_delete(tenant=tenant)
    assert not TenantKey.objects.filter(tenant_id=tenant_id).exists()
