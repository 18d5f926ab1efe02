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
import os
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tenants.crypto import keys
from tenants.models import Tenant

PREFIX = "whsec_"
SECRET_BYTES = 24
NONCE_BYTES = 12


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _aad(tenant_id: int, version: int) -> bytes:
    # A sealed secret copied to another tenant's row does not open.
    return b"portal-webhook-secret:v1:%d:%d" % (tenant_id, version)


def seal(tenant: Tenant, secret: str) -> tuple[int, bytes]:
    """(data-key version, nonce + ciphertext) of the secret."""
    version, key = keys.current_data_key(tenant)
    nonce = os.urandom(NONCE_BYTES)
    return version, nonce + AESGCM(key).encrypt(nonce, secret.encode(), _aad(tenant.id, version))


def unseal(tenant: Tenant, version: int, sealed: bytes) -> str:
    key = keys.data_key(tenant, version)
    sealed = bytes(sealed)
    return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _aad(tenant.id, version)).decode()


def sign(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> str:
    """The value of the webhook-signature header."""
    key = base64.b64decode(secret.removeprefix(PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
