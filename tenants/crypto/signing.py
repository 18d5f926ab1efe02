"""The platform's Ed25519 signing key: audit-export manifests, retention checkpoints, prediction receipts.

A signature covers the canonical JSON of an object without its ``signature`` field (keys sorted, no
spaces, UTF-8) and is base64-encoded (docs/api.md). Anyone holding the public key
(GET /api/v1/audit-events/signing-key/) can check it offline.

The private key comes from PORTAL_SIGNING_KEY (base64 of the raw 32 bytes; required in production),
else from a file generated once under VAR_DIR, like the development secret key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ALGORITHM = "Ed25519"
KEY_FILE = "signing_key"


def canonical(obj: dict) -> bytes:
    """The signed bytes: the object without `signature`, keys sorted, no spaces, UTF-8."""
    body = {k: v for k, v in obj.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _raw_private_key() -> bytes:
    configured = getattr(settings, "PORTAL_SIGNING_KEY", "")
    if configured:
        try:
            raw = base64.b64decode(configured, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ImproperlyConfigured("PORTAL_SIGNING_KEY must be base64 of a raw 32-byte Ed25519 key")
        return raw
    return _key_from_var()


def _key_from_var() -> bytes:
    """Development only: generated once and kept under VAR_DIR (mode 0600)."""
    import os

    folder = settings.VAR_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / KEY_FILE
    if not path.exists():
        encoded = base64.b64encode(os.urandom(32)).decode()
        # O_EXCL: two processes starting at once must not each write their own key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(encoded)
    return base64.b64decode(path.read_text().strip())


@lru_cache(maxsize=1)
def _private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(_raw_private_key())


def _raw_public_key(private: Ed25519PrivateKey | None = None) -> bytes:
    return (private or _private_key()).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id_for(raw_public_key: bytes) -> str:
    return hashlib.sha256(raw_public_key).hexdigest()[:16]


def key_id() -> str:
    return key_id_for(_raw_public_key())


def public_key_info() -> dict:
    """The body of GET /api/v1/audit-events/signing-key/."""
    raw = _raw_public_key()
    return {"key_id": key_id_for(raw), "algorithm": ALGORITHM,
            "public_key": base64.b64encode(raw).decode()}


def sign(obj: dict) -> str:
    """Base64 Ed25519 signature over ``canonical(obj)`` (any `signature` field is left out)."""
    return base64.b64encode(_private_key().sign(canonical(obj))).decode()


def verify(obj: dict, public_key: str | bytes | None = None) -> bool:
    """Does ``obj["signature"]`` sign the rest of ``obj``? With the platform key unless one is given
    (base64 or raw bytes), so an auditor can check an export on a machine without the platform."""
    try:
        raw = _decode_public_key(public_key) if public_key is not None else _raw_public_key()
        signature = base64.b64decode(obj.get("signature") or "", validate=True)
        Ed25519PublicKey.from_public_bytes(raw).verify(signature, canonical(obj))
    except (InvalidSignature, ValueError, TypeError, binascii.Error):
        return False
    return True


def _decode_public_key(public_key: str | bytes) -> bytes:
    if isinstance(public_key, bytes) and len(public_key) == 32:
        return public_key
    return base64.b64decode(public_key, validate=True)


def forget_key() -> None:
    """Tests that change PORTAL_SIGNING_KEY call this."""
    _private_key.cache_clear()
