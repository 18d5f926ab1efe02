"""Tenant data keys: wrapped by the platform master keys, rotated, destroyed with the tenant."""

from __future__ import annotations

import base64
import hashlib
import importlib
import os
import stat
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal.settings import base as base_settings
from portal.settings.env import parse_keys
from tenants import keys, services
from tenants.models import TenantKey


def new_master_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


# --- master keys and settings -------------------------------------------------------------------
def test_a_master_key_id_is_the_start_of_its_sha256():
    key = os.urandom(32)
    assert keys.master_key_id(key) == hashlib.sha256(key).hexdigest()[:16]


def test_master_keys_must_be_base64_of_exactly_32_bytes():
    good = new_master_key()
    assert parse_keys(f" {good} ,", source="PORTAL_MASTER_KEYS") == [good]
    with pytest.raises(ImproperlyConfigured, match="key #2 is not valid base64"):
        parse_keys(f"{good},not*base64", source="PORTAL_MASTER_KEYS")
    short = base64.b64encode(os.urandom(16)).decode()
    with pytest.raises(ImproperlyConfigured, match="key #1 decodes to 16 bytes") as error:
        parse_keys(short, source="PORTAL_MASTER_KEYS")
    assert short not in str(error.value)  # a secret never ends up in a log


def test_a_bad_master_key_in_settings_fails_loudly(settings):
    settings.PORTAL_MASTER_KEYS = [base64.b64encode(b"too short").decode()]
    with pytest.raises(ImproperlyConfigured, match="decodes to 9 bytes, not 32"):
        keys.master_keys()


def test_the_development_master_key_is_generated_once_and_private(monkeypatch, tmp_path):
    monkeypatch.setattr(base_settings, "VAR_DIR", tmp_path)
    first = base_settings._master_key_from_var()
    assert base_settings._master_key_from_var() == first
    assert len(base64.b64decode(first[0])) == 32
    assert stat.S_IMODE((tmp_path / "master_keys").stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["master_keys"]


def test_production_settings_refuse_to_start_without_master_keys(monkeypatch):
    monkeypatch.setenv("DJANGO_SECRET_KEY", "x" * 60)
    monkeypatch.delenv("PORTAL_MASTER_KEYS", raising=False)
    monkeypatch.delitem(sys.modules, "portal.settings.production", raising=False)
    with pytest.raises(ImproperlyConfigured, match="PORTAL_MASTER_KEYS must be set in production"):
        importlib.import_module("portal.settings.production")


def test_production_settings_take_the_master_keys_from_the_environment(monkeypatch):
    wanted = [new_master_key(), new_master_key()]
    monkeypatch.setenv("DJANGO_SECRET_KEY", "x" * 60)
    monkeypatch.setenv("PORTAL_MASTER_KEYS", ",".join(wanted))
    monkeypatch.setenv("PORTAL_SIGNING_KEY", new_master_key())
    monkeypatch.delitem(sys.modules, "portal.settings.production", raising=False)
    production = importlib.import_module("portal.settings.production")
    monkeypatch.delitem(sys.modules, "portal.settings.production")
    assert production.PORTAL_MASTER_KEYS == wanted


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
