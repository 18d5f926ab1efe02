"""The platform signing key (tenants/crypto/signing.py) and GET /api/v1/audit-events/signing-key/."""

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from tenants.crypto import signing


@pytest.fixture
def configured_key(settings):
    private = Ed25519PrivateKey.generate()
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    settings.PORTAL_SIGNING_KEY = base64.b64encode(raw).decode()
    signing.forget_key()
    yield private
    signing.forget_key()


def test_a_signature_covers_the_canonical_json_without_the_signature_field(configured_key):
    body = {"b": 1, "a": "ü", "nested": {"z": [1, 2], "y": None}}
    body["signature"] = signing.sign(body)
    expected = b'{"a":"\xc3\xbc","b":1,"nested":{"y":null,"z":[1,2]}}'
    assert signing.canonical(body) == expected
    configured_key.public_key().verify(base64.b64decode(body["signature"]), expected)
    assert signing.verify(body)


def test_any_change_breaks_the_signature(configured_key):
    body = {"count": 10, "sha256": "ab" * 32}
    body["signature"] = signing.sign(body)
    assert not signing.verify({**body, "count": 11})
    assert not signing.verify({**body, "signature": base64.b64encode(b"x" * 64).decode()})
    assert not signing.verify({**body, "signature": "not base64!"})
    assert not signing.verify({"count": 10})


def test_key_id_is_the_start_of_the_public_keys_sha256(configured_key):
    raw = configured_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    info = signing.public_key_info()
    assert info == {"key_id": hashlib.sha256(raw).hexdigest()[:16], "algorithm": "Ed25519",
                    "public_key": base64.b64encode(raw).decode()}


def test_someone_without_the_platform_verifies_with_the_published_public_key(configured_key):
    body = {"export_id": "x"}
    body["signature"] = signing.sign(body)
    public = signing.public_key_info()["public_key"]
    other = base64.b64encode(Ed25519PrivateKey.generate().public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)).decode()
    assert signing.verify(body, public_key=public)
    assert not signing.verify(body, public_key=other)
    Ed25519PublicKey.from_public_bytes(base64.b64decode(public))  # a valid raw 32-byte key


def test_a_bad_configured_key_fails_loudly(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.PORTAL_SIGNING_KEY = base64.b64encode(b"short").decode()
    signing.forget_key()
    with pytest.raises(ImproperlyConfigured, match="32-byte"):
        signing.key_id()
    signing.forget_key()


def test_without_configuration_a_key_is_generated_once_under_var(settings, tmp_path):
    settings.PORTAL_SIGNING_KEY = ""
    settings.VAR_DIR = tmp_path
    signing.forget_key()
    first = signing.key_id()
    signing.forget_key()
    assert signing.key_id() == first
    assert (tmp_path / "signing_key").stat().st_mode & 0o777 == 0o600
    signing.forget_key()


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["alice", "bob", "vera", "audrey"])
def test_every_member_reads_the_public_signing_key(api_as, name):
    response = api_as(name).get("/api/v1/audit-events/signing-key/")
    assert response.status_code == 200
    assert response.json() == signing.public_key_info()


@pytest.mark.django_db
def test_charlie_and_strangers_do_not_get_acmes_signing_key_endpoint(world, anon):
    from tests import factories

    charlie = factories.token_client(world.charlie, world.globex, host_slug="acme")
    assert charlie.get("/api/v1/audit-events/signing-key/").status_code == 404
    assert anon.get("/api/v1/audit-events/signing-key/").status_code == 401
