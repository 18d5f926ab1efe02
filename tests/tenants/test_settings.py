"""Settings that security depends on: password hashing, TLS to Redis and the broker."""

import json
import os
import ssl
import subprocess
import sys

from django.conf import settings


def test_base_and_production_settings_hash_passwords_with_argon2():
    from portal.settings import base

    assert base.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    names = [v["NAME"].rsplit(".", 1)[-1] for v in base.AUTH_PASSWORD_VALIDATORS]
    assert names == ["UserAttributeSimilarityValidator", "MinimumLengthValidator",
                     "CommonPasswordValidator", "NumericPasswordValidator"]


def test_argon2_really_hashes(settings):
    from django.contrib.auth.hashers import check_password, make_password

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
    encoded = make_password("correct horse")
    assert encoded.startswith("argon2$argon2id$")
    assert check_password("correct horse", encoded)


def test_a_rediss_url_verifies_the_server_against_the_given_ca():
    script = ("import json, ssl; from portal.settings import base as s; print(json.dumps({"
              "'cache': s.CACHES['default']['OPTIONS'], 'gate': s.REDIS_TLS_OPTIONS, "
              "'broker': {k: str(int(v)) if k == 'ssl_cert_reqs' else v for k, v in s.CELERY_BROKER_USE_SSL.items()}}))")
    env = {**os.environ, "REDIS_URL": "rediss://redis.internal:6380/0",
           "REDIS_SSL_CA_CERTS": "/etc/portal/redis-ca.pem", "DATABASE_URL": settings.DATABASE_URL}
    env.pop("CELERY_BROKER_URL", None)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         cwd=settings.BASE_DIR, check=True)
    shown = json.loads(out.stdout.strip().splitlines()[-1])
    expected = {"ssl_cert_reqs": "required", "ssl_ca_certs": "/etc/portal/redis-ca.pem"}
    assert shown["cache"] == expected
    assert shown["gate"] == expected
    assert shown["broker"] == {"ssl_cert_reqs": str(int(ssl.CERT_REQUIRED)),
                               "ssl_ca_certs": "/etc/portal/redis-ca.pem"}
