"""Tenant data keys, stored only wrapped (AES-256-GCM) by a platform master key.

Master keys come from settings.PORTAL_MASTER_KEYS (base64 of 32 bytes, newest first), parsed and
checked once by the settings; here they are only decoded. A key's id is the first 16 hex characters
of its SHA-256: rows name the master key that wraps them, so readers
always unwrap with that one, and re-wrapping under a new master key (`rewrap_all`) can run while the
site serves. Keep old master keys configured until rotation is done.

Each tenant has data-key versions 1, 2, ...: files name the version they were written with, new
files use the newest (`current_data_key`). Destroying a tenant's keys makes all of its files
undecryptable (crypto-shredding).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from tenants.auditing import audit
from tenants.models import Tenant, TenantKey

logger = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12
WRAP_CONTEXT = b"portal-tenant-data-key:v1"
CACHE_SIZE = 1024


class KeyUnavailable(Exception):
    """A data key cannot be had: never created, destroyed, or its master key is not configured."""


class UnknownKeyVersion(KeyUnavailable):
    """The tenant has data keys, but not this version: what names it is wrong or corrupted."""


@dataclass(frozen=True)
class MasterKey:
    id: str
    key: bytes = field(repr=False)


# --- master keys --------------------------------------------------------------------------------
_decoded: dict[tuple[str, ...], tuple[MasterKey, ...]] = {}


def _configured() -> tuple[str, ...]:
    # Parsed and checked once, by the settings (portal/settings/env.py parse_keys): canonical base64
    # of 32 bytes each, newest first, never empty.
    return tuple(settings.PORTAL_MASTER_KEYS)


def _decode(encoded: tuple[str, ...]) -> tuple[MasterKey, ...]:
    keys = (base64.b64decode(item) for item in encoded)
    return tuple(MasterKey(id=master_key_id(key), key=key) for key in keys)


def master_key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


def master_keys() -> tuple[MasterKey, ...]:
    """The configured master keys, newest first. Re-read from settings on each call (tests override
    them), decoded once per distinct value."""
    encoded = _configured()
    keys = _decoded.get(encoded)
    if keys is None:
        keys = _decode(encoded)
        _decoded.clear()  # only the current configuration is worth keeping
        _decoded[encoded] = keys
    return keys


def newest_master_key() -> MasterKey:
    return master_keys()[0]


def master_key(key_id: str) -> MasterKey:
    for key in master_keys():
        if key.id == key_id:
            return key
    raise KeyUnavailable(
        f"Master key {key_id} is not configured in PORTAL_MASTER_KEYS; restore it from the backup "
        "(keep old master keys configured until `manage.py rotate_keys` has finished)."
    )


# --- wrapping -----------------------------------------------------------------------------------
def _wrap_aad(tenant_id: int, version: int) -> bytes:
    # Binds a wrapped key to its row: a blob copied to another tenant or version will not unwrap.
    return b"%s:%d:%d" % (WRAP_CONTEXT, tenant_id, version)


def wrap_key(data_key: bytes, *, tenant_id: int, version: int, master: MasterKey) -> bytes:
    """nonce (12 random bytes) + AES-256-GCM(data key) under the master key."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(master.key).encrypt(nonce, data_key, _wrap_aad(tenant_id, version))


def unwrap_key(wrapped: bytes, *, tenant_id: int, version: int, master: MasterKey) -> bytes:
    nonce, sealed = wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:]
    try:
        return AESGCM(master.key).decrypt(nonce, sealed, _wrap_aad(tenant_id, version))
    except InvalidTag:
        raise KeyUnavailable(
            f"Data key v{version} of tenant {tenant_id} does not unwrap with master key "
            f"{master.id}: the stored key was altered or the master key is wrong."
        )


# --- in-process cache of unwrapped keys ---------------------------------------------------------
# Keyed by the row's master key id *and* its wrap nonce: a version re-created after a rolled-back
# transaction, or re-wrapped elsewhere, is a different entry, so a stale key is never served.
# The row itself is read on every use, so a destroyed key stops working in every process at once.
_cache: OrderedDict[tuple, bytes] = OrderedDict()
_cache_lock = threading.Lock()


def _cache_get(cache_key: tuple) -> bytes | None:
    with _cache_lock:
        key = _cache.get(cache_key)
        if key is not None:
            _cache.move_to_end(cache_key)
        return key


def _cache_put(cache_key: tuple, key: bytes) -> None:
    with _cache_lock:
        _cache[cache_key] = key
        _cache.move_to_end(cache_key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)


def forget_cached_keys(tenant_id: int | None = None) -> None:
    with _cache_lock:
        for cache_key in [k for k in _cache if tenant_id is None or k[0] == tenant_id]:
            del _cache[cache_key]


def _unwrap_row(tenant_id: int, version: int, master_id: str, wrapped: bytes) -> bytes:
    master = master_key(master_id)  # even on a cache hit: a removed master key stops reads at once
    wrapped = bytes(wrapped)
    cache_key = (tenant_id, version, master_id, wrapped[:NONCE_BYTES])
    key = _cache_get(cache_key)
    if key is None:
        key = unwrap_key(wrapped, tenant_id=tenant_id, version=version, master=master)
        _cache_put(cache_key, key)
    return key


# --- data keys ----------------------------------------------------------------------------------
def _create_version(tenant: Tenant, version: int) -> TenantKey:
    master = newest_master_key()
    row = TenantKey(
        tenant=tenant, version=version, master_key_id=master.id,
        wrapped_key=wrap_key(os.urandom(KEY_BYTES), tenant_id=tenant.id, version=version, master=master),
    )
    row.full_clean()
    row.save()
    return row


def ensure_tenant_key(tenant: Tenant) -> TenantKey:
    """The tenant's newest key row; creates version 1 when it has none."""
    row = TenantKey.objects.filter(tenant=tenant).order_by("-version").first()
    if row is not None:
        return row
    try:
        with transaction.atomic():
            return _create_version(tenant, 1)
    except IntegrityError:
        # Another process created it first (unique tenant + version): use theirs.
        return TenantKey.objects.get(tenant=tenant, version=1)


def current_data_key(tenant: Tenant) -> tuple[int, bytes]:
    """(version, key) that new files of the tenant are written with: always the newest version,
    read from the database so a new version takes effect in every process at once."""
    row = (TenantKey.objects.filter(tenant_id=tenant.id).order_by("-version")
           .values_list("version", "master_key_id", "wrapped_key").first())
    if row is None:
        # Tenants created before data keys existed get theirs on first use.
        created = ensure_tenant_key(tenant)
        row = (created.version, created.master_key_id, created.wrapped_key)
    version, master_id, wrapped = row
    return version, _unwrap_row(tenant.id, version, master_id, wrapped)


def data_key(tenant: Tenant, version: int) -> bytes:
    """The key of one version (retired versions still read old files). Never creates a key."""
    row = (TenantKey.objects.filter(tenant_id=tenant.id, version=version)
           .values_list("master_key_id", "wrapped_key").first())
    if row is None:
        if not TenantKey.objects.filter(tenant_id=tenant.id).exists():
            raise KeyUnavailable(f"Tenant {tenant.slug} has no data key: it was destroyed.")
        raise UnknownKeyVersion(f"Tenant {tenant.slug} has no data key version {version}.")
    master_id, wrapped = row
    return _unwrap_row(tenant.id, version, master_id, wrapped)


# --- small values sealed with a tenant's data key ------------------------------------------------
def seal(tenant: Tenant, plaintext: bytes, *, purpose: bytes) -> bytes:
    """version (4 bytes) + nonce + AES-256-GCM(plaintext) under the tenant's newest data key, bound
    to the tenant, the version and `purpose` (a value sealed for one use does not open for another)."""
    version, key = current_data_key(tenant)
    nonce = os.urandom(NONCE_BYTES)
    aad = b"%s:%d:%d" % (purpose, tenant.id, version)
    return version.to_bytes(4, "big") + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def sealed_version(sealed: bytes) -> int:
    """The data-key version a value was sealed with."""
    return int.from_bytes(bytes(sealed[:4]), "big")


def unseal(tenant: Tenant, sealed: bytes, *, purpose: bytes) -> bytes:
    """The plaintext of `seal`; KeyUnavailable when its key is gone or the value was altered."""
    sealed = bytes(sealed)
    version = sealed_version(sealed)
    nonce, body = sealed[4:4 + NONCE_BYTES], sealed[4 + NONCE_BYTES:]
    try:
        return AESGCM(data_key(tenant, version)).decrypt(nonce, body, b"%s:%d:%d" % (purpose, tenant.id, version))
    except InvalidTag:
        raise KeyUnavailable(f"A sealed value of tenant {tenant.slug} does not open: it was altered.")


def key_versions(tenant: Tenant) -> list[int]:
    return list(TenantKey.objects.filter(tenant=tenant).order_by("version")
                .values_list("version", flat=True))


# --- rotation -----------------------------------------------------------------------------------
def rewrap_all(tenant: Tenant | None = None) -> dict[str, int]:
    """Re-wrap every data key not under the newest master key. Idempotent.

    One short transaction per row; a reader sees either the old (master id, blob) pair or the new
    one, both valid while the old master key stays configured.
    """
    newest = newest_master_key()
    stale = TenantKey.objects.exclude(master_key_id=newest.id)
    if tenant is not None:
        stale = stale.filter(tenant=tenant)
    done: dict[int, list[int]] = {}
    for pk in stale.values_list("pk", flat=True):
        with transaction.atomic():
            row = (TenantKey.objects.select_for_update(of=("self",)).select_related("tenant")
                   .get(pk=pk))
            if row.master_key_id == newest.id:
                continue
            key = _unwrap_row(row.tenant_id, row.version, row.master_key_id, row.wrapped_key)
            row.wrapped_key = wrap_key(key, tenant_id=row.tenant_id, version=row.version,
                                       master=newest)
            previous, row.master_key_id = row.master_key_id, newest.id
            row.rewrapped_at = timezone.now()
            row.save(update_fields=["wrapped_key", "master_key_id", "rewrapped_at"])
            audit.record("keys.rotate", tenant=row.tenant, object_type="tenant_key",
                         object_id=row.version,
                         details={"operation": "rewrap", "version": row.version,
                                  "from_master_key": previous, "to_master_key": newest.id})
        done.setdefault(row.tenant_id, []).append(row.version)
    current = TenantKey.objects.filter(master_key_id=newest.id)
    if tenant is not None:
        current = current.filter(tenant=tenant)
    rewrapped = sum(len(v) for v in done.values())
    logger.info("tenant keys rewrapped", extra={"master_key_id": newest.id, "rewrapped": rewrapped})
    return {"rewrapped": rewrapped, "tenants": len(done), "under_newest": current.count(),
            "master_key_id": newest.id}


def new_key_version(tenant: Tenant) -> int:
    """Create the next data-key version; from now on new files of the tenant use it."""
    with transaction.atomic():
        # Lock the tenant's key rows so two rotations cannot pick the same number.
        list(TenantKey.objects.select_for_update().filter(tenant=tenant).values_list("pk", flat=True))
        newest = TenantKey.objects.filter(tenant=tenant).aggregate(v=Max("version"))["v"] or 0
        row = _create_version(tenant, newest + 1)
        audit.record("keys.rotate", tenant=tenant, object_type="tenant_key", object_id=row.version,
                     details={"operation": "new_data_key", "version": row.version,
                              "master_key": row.master_key_id})
    return row.version


def retire_versions(tenant: Tenant, *, below: int) -> int:
    """Mark versions older than `below` retired. They still decrypt files that carry them."""
    return (TenantKey.objects.filter(tenant=tenant, version__lt=below, retired_at__isnull=True)
            .update(retired_at=timezone.now()))


def destroy_tenant_keys(tenant: Tenant) -> int:
    """Crypto-shredding: after this nothing of the tenant decrypts, in any process.

    The wrapped bytes are overwritten before the rows go so the live table holds no trace; old row
    versions in PostgreSQL and in database backups still hold wrapped copies, which are useless once
    the master keys that wrap them are retired (README: rotating master keys).
    """
    with transaction.atomic():
        rows = list(TenantKey.objects.select_for_update().filter(tenant=tenant))
        for row in rows:
            row.wrapped_key = os.urandom(len(bytes(row.wrapped_key)))
            row.save(update_fields=["wrapped_key"])
        TenantKey.objects.filter(tenant=tenant).delete()
    forget_cached_keys(tenant.id)
    logger.info("tenant keys destroyed", extra={"tenant": tenant.slug, "versions": len(rows)})
    return len(rows)
