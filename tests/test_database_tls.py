"""The platform against a PostgreSQL that accepts only TLS, with a certificate made here.

A throw-away cluster (pgserver's binaries, or the machine's) listens on a free TCP port with ssl=on
and a pg_hba.conf of `hostssl` lines only. `manage.py setup_platform` and one HTTP request run
with DATABASE_SSLMODE=verify-full and DATABASE_SSLROOTCERT pointing at the CA made here
(portal/settings/base.py); a connection without TLS is refused.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.conf import settings

pytestmark = pytest.mark.slow

BASE_DIR = Path(settings.BASE_DIR)
PG_USER = "pgserver"  # PostgreSQL refuses to run as root


def _pg_bin() -> Path:
    """Binaries built with OpenSSL: the machine's (pgserver's wheels are built without SSL)."""
    import importlib.util

    spec = importlib.util.find_spec("pgserver")  # located, not imported
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    if spec and spec.origin:
        candidates.append(Path(spec.origin).parent / "pginstall" / "bin")
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists() and _has_ssl(folder):
            return folder
    pytest.skip("no PostgreSQL binaries built with SSL (apt-get install postgresql)")


def _has_ssl(folder: Path) -> bool:
    postgres = folder / "postgres"
    if not postgres.exists():
        return False
    # libssl linked in (ldd), the surest sign without starting a server.
    linked = subprocess.run(["ldd", str(postgres)], capture_output=True, text=True)
    return "libssl" in linked.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate it signs for localhost and 127.0.0.1."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("portal test CA")).issuer_name(_name("portal test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "server.crt", folder / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return ca_path, cert_path, key_path


def _system_user(name: str):
    """The user PostgreSQL runs as (root may not); created like pgserver does when missing."""
    import pwd

    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", name], check=True, capture_output=True)
        return pwd.getpwnam(name)


def _as_postgres_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", PG_USER, "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture
def tls_only_postgres(tmp_path):
    """Yields (port, ca_path); the cluster is stopped and removed afterwards."""
    bin_dir = _pg_bin()
    root = tmp_path / "tls-pg"
    root.mkdir()
    root.chmod(0o755)
    tmp_path.chmod(0o755)
    ca_path, cert_path, key_path = _write_certificates(root)
    data = root / "data"
    if os.geteuid() == 0:
        entry = _system_user(PG_USER)
        for parent in root.parents:  # let the server's user reach its files
            parent.chmod(parent.stat().st_mode | 0o005)
        data.mkdir()
        for path in (root, data, cert_path, key_path):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    key_path.chmod(0o600)
    subprocess.run(_as_postgres_user([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                                      "--auth=trust", "-E", "UTF8"]),
                   check=True, capture_output=True)
    (data / "pg_hba.conf").write_text(
        "# TLS only: no local socket, no plain TCP\n"
        "hostssl all all 127.0.0.1/32 trust\n"
        "hostssl all all ::1/128 trust\n")
    port = _free_port()
    options = (f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c ssl=on "
               f"-c ssl_cert_file={cert_path} -c ssl_key_file={key_path}")
    subprocess.run(_as_postgres_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options,
                                      "-l", str(root / "log"), "-w", "start"]),
                   check=True, capture_output=True)
    try:
        yield port, ca_path
    finally:
        subprocess.run(_as_postgres_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                                          "-w", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_the_platform_runs_against_a_postgres_that_only_speaks_tls(tls_only_postgres):
    port, ca_path = tls_only_postgres
    url = f"postgres://postgres@localhost:{port}/postgres"

    # Without TLS: refused by pg_hba.conf.
    with pytest.raises(psycopg.OperationalError, match="no encryption|SSL off|pg_hba"):
        psycopg.connect(url, sslmode="disable", connect_timeout=5).close()
    # With TLS but a CA that did not sign the server: refused by the client.
    with pytest.raises(psycopg.OperationalError, match="certificate"):
        psycopg.connect(url, sslmode="verify-full", sslrootcert=certifi_or_system(),
                        connect_timeout=5).close()

    env = {**os.environ, "DATABASE_URL": url, "DATABASE_SSLMODE": "verify-full",
           "DATABASE_SSLROOTCERT": str(ca_path), "DJANGO_SETTINGS_MODULE": "portal.settings.local",
           "REDIS_URL": settings.REDIS_URL, "PORTAL_CACHE_PREFIX": f"tls-test-{os.getpid()}",
           "DATABASE_CONN_MAX_AGE": "0"}
    setup = subprocess.run([sys.executable, "manage.py", "setup_platform", "-v", "0"], cwd=BASE_DIR,
                           env=env, capture_output=True, text=True, timeout=600)
    assert setup.returncode == 0, setup.stdout + setup.stderr

    script = (
        "from django.db import connection\n"
        "from django.test import Client\n"
        "landing = Client(HTTP_HOST='localhost').get('/')\n"
        "ready = Client(HTTP_HOST='localhost').get('/readyz')\n"
        "with connection.cursor() as c:\n"
        "    c.execute('SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()')\n"
        "    ssl, version = c.fetchone()\n"
        "print('RESULT', landing.status_code, ready.status_code, ssl, version)\n"
    )
    started = time.monotonic()
    run = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=BASE_DIR, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    result = next(line for line in run.stdout.splitlines() if line.startswith("RESULT")).split()
    assert result[1:4] == ["200", "200", "True"], run.stdout
    assert result[4].startswith("TLSv1.")
    assert time.monotonic() - started < 300


def certifi_or_system() -> str:
    """A CA bundle that certainly did not sign our throw-away server's certificate."""
    import ssl

    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.skip("no system CA bundle to test a wrong CA with")
