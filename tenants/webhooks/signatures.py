"""Webhook secrets and signatures, as the Standard Webhooks specification has them.

A secret is ``whsec_`` + base64 of 24 random bytes; the signing key is those bytes. Each request
carries ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature: v1,<base64 of
HMAC-SHA256(key, "{id}.{timestamp}.{body}")>``, so the receivers' standard libraries verify it.
The secret is stored only encrypted with the tenant's data key (AES-256-GCM), bound to its tenant.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from tenants.crypto import keys
from tenants.models import Tenant

PREFIX = "whsec_"
SECRET_BYTES = 24


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


SEAL_PURPOSE = b"portal-webhook-secret:v1"  # a sealed secret opens for this use and tenant only


def seal(tenant: Tenant, secret: str) -> tuple[int, bytes]:
    """(data-key version, sealed secret) (keys.seal: bound to the tenant and the key version)."""
    sealed = keys.seal(tenant, secret.encode(), purpose=SEAL_PURPOSE)
    return keys.sealed_version(sealed), sealed


def unseal(tenant: Tenant, version: int, sealed: bytes) -> str:
    return keys.unseal(tenant, sealed, purpose=SEAL_PURPOSE).decode()


def sign(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> str:
    """The value of the webhook-signature header."""
    key = base64.b64decode(secret.removeprefix(PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
