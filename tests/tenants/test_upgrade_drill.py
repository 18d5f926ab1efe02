"""The upgrade drill (tenants/upgrades.py, `manage.py upgrade_tenants`): a new migration reaches
every tenant but one whose schema was made to fail, the command names it and exits 1, and after
the cause is fixed a re-run finishes it; gunicorn keeps serving another tenant meanwhile.

The new migration belongs to a tenant app (`upgrade_drill`) written for the test into a temporary
folder and installed only in the command's settings: it adds a column with a default and an index
to the datasets table, as a real upgrade does. Its tenant fails because that column already
exists there.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import threading
import time

import pytest
from django.conf import settings
from django.db import connection

from tenants import services
from tests import factories
from tests.servers import WebServer, process_env

pytestmark = pytest.mark.slow

APP = "upgrade_drill"
SETTINGS = f"""
from portal.settings.test import *  # noqa: F403

TENANT_APPS = [*TENANT_APPS, "{APP}"]  # noqa: F405
INSTALLED_APPS = [*INSTALLED_APPS, "{APP}"]  # noqa: F405
"""
MIGRATION = """from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("mlcore", "{latest}")]
    operations = [migrations.RunSQL(
        "ALTER TABLE mlcore_dataset ADD COLUMN drill_flag integer NOT NULL DEFAULT 0; "
        "CREATE INDEX drill_flag_idx ON mlcore_dataset (drill_flag)",
        "DROP INDEX drill_flag_idx; ALTER TABLE mlcore_dataset DROP COLUMN drill_flag",
    )]
"""


def has_migration(schema: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{schema}".django_migrations WHERE app = %s', [APP])  # noqa: S608
        applied = cursor.fetchone()[0] == 1
        cursor.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = %s "
                       "AND table_name = 'mlcore_dataset' AND column_name = 'drill_flag'", [schema])
        return applied and cursor.fetchone()[0] == 1


def all_tenant_schemas() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_schema FROM information_schema.tables WHERE table_name = 'mlcore_dataset'")
        return [row[0] for row in cursor.fetchall()]


@pytest.fixture
def drill_env(tmp_path):
    """Settings with the drill app for the command's process; the test database is put back after."""
    latest = sorted(p.stem for p in (settings.BASE_DIR / "mlcore" / "migrations").glob("0*.py"))[-1]
    (tmp_path / APP / "migrations").mkdir(parents=True)
    (tmp_path / APP / "__init__.py").write_text("")
    (tmp_path / APP / "migrations" / "__init__.py").write_text("")
    (tmp_path / APP / "migrations" / "0001_drill.py").write_text(MIGRATION.format(latest=latest))
    (tmp_path / "upgrade_drill_settings.py").write_text(SETTINGS)
    env = process_env()
    env.update(DJANGO_SETTINGS_MODULE="upgrade_drill_settings", PYTHONPATH=f"{tmp_path}:{settings.BASE_DIR}")
    yield env
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        for schema in all_tenant_schemas():  # the template and the session's tenants keep no trace
            cursor.execute(f'ALTER TABLE "{schema}".mlcore_dataset DROP COLUMN IF EXISTS drill_flag')
            cursor.execute(f'DELETE FROM "{schema}".django_migrations WHERE app = %s', [APP])  # noqa: S608


def upgrade(env) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run the command; also when the template got the migration (the tenants come right after
    it) and when the command exited."""
    command = [sys.executable, "manage.py", "upgrade_tenants", "--workers", "2"]
    proc = subprocess.Popen(command, env=env, cwd=settings.BASE_DIR, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    template_moved = None
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if template_moved is None and has_migration(settings.TENANT_BASE_SCHEMA):
            template_moved = time.monotonic()
        time.sleep(0.02)
    stdout, stderr = proc.communicate(timeout=max(1, deadline - time.monotonic()))
    exited = time.monotonic()
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr), template_moved or exited, exited


class Probe(threading.Thread):
    """Globex's dataset list through gunicorn, over and over: (began, ended, status)."""

    def __init__(self, port: int, token: str):
        super().__init__(daemon=True)
        self.port, self.stop = port, threading.Event()
        self.headers = {"Host": factories.host("globex"), "Authorization": f"Bearer {token}"}
        self.samples: list[tuple[float, float, int]] = []

    def run(self) -> None:
        while not self.stop.is_set():
            began = time.monotonic()
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
            try:
                conn.request("GET", "/api/v1/datasets/", headers=self.headers)
                status = conn.getresponse().status
            except (OSError, http.client.HTTPException):
                status = 0
            finally:
                conn.close()
            self.samples.append((began, time.monotonic(), status))
            time.sleep(0.02)


def test_a_failing_tenant_leaves_the_others_migrated_and_a_rerun_finishes_it(committed, drill_env, world):
    tenants = [services.tenant_create(slug=f"drill{i:02d}", name=f"Drill {i}", admin_email=f"a@drill{i:02d}.test",
                                      notify=False).tenant for i in range(20)]
    broken = tenants[0]  # the first drill tenant in the command's order: a fail-fast executor stops here
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE "{broken.schema_name}".mlcore_dataset ADD COLUMN drill_flag text')
    token = factories.token_client(world.charlie, world.globex).token
    web = WebServer("upgrade-drill-web")
    probe = Probe(web.port, token)
    try:
        probe.start()
        first, migrating, exited = upgrade(drill_env)
        probe.stop.set()
        probe.join(timeout=30)
    finally:
        web.stop()

    assert first.returncode == 1, first.stdout + first.stderr
    assert f"FAILED {broken.slug} ({broken.schema_name}): ProgrammingError:" in first.stderr
    assert 'column "drill_flag" of relation "mlcore_dataset" already exists' in first.stderr
    assert f"1 tenant schema(s) failed to migrate: {broken.slug} ({broken.schema_name})" in first.stderr
    assert "22 tenant schemas" in first.stdout and "21 migrated, 0 already up to date, 1 failed" in first.stdout
    others = [t.schema_name for t in tenants[1:]] + [world.acme.schema_name, world.globex.schema_name]
    assert [s for s in others if not has_migration(s)] == []
    assert has_migration(settings.TENANT_BASE_SCHEMA)
    assert not has_migration(broken.schema_name)
    # Served while tenants were being migrated: asked after the template moved, answered before exit.
    served = [s for s in probe.samples if migrating <= s[0] and s[1] <= exited and s[2] == 200]
    assert len(served) >= 1, (migrating, exited, probe.samples[-20:])
    assert {status for _, _, status in probe.samples} == {200}

    with connection.cursor() as cursor:  # the cause fixed
        cursor.execute(f'ALTER TABLE "{broken.schema_name}".mlcore_dataset DROP COLUMN drill_flag')
    second, _, _ = upgrade(drill_env)

    assert second.returncode == 0, second.stdout + second.stderr
    assert "22 tenant schemas" in second.stdout and "1 migrated, 21 already up to date, 0 failed" in second.stdout
    assert [s for s in [broken.schema_name, *others] if not has_migration(s)] == []
    newcomer = services.tenant_create(slug="drill-new", name="Drill new", admin_email="a@drill-new.test",
                                      notify=False).tenant
    assert has_migration(newcomer.schema_name)
