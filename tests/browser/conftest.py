"""Headless Chromium (Debian's, driven by Playwright) against a real server on the test database.

The server is gunicorn in a subprocess with the test settings, so it sees the session's tenants and
people. Screenshots are kept under test-artifacts/ as test artefacts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from tests import factories
from tests.servers import database_url, free_port

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
# axe-core, installed by `make axe` (npm ci --prefix tests/browser) at the version package-lock.json pins.
AXE_JS = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
# Playwright's sync API keeps an event loop in this thread; our ORM calls in tests are still sync.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = pytest.mark.browser
LOOPBACK = "127.0.0.0/8"


@pytest.fixture(scope="session")
def server(django_db_setup, django_db_blocker):
    """Yields a function: url("acme", "/login/") -> http://acme.localhost:PORT/login/."""
    with django_db_blocker.unblock():
        url_of_database = database_url()
    port = free_port()
    # The same PORTAL_TEST_RUN (set by portal/pytest_harness.py) and, under pytest-xdist,
    # PYTEST_XDIST_WORKER give the server the same cache prefix and storage folder as this
    # process (portal/settings/test.py); DATABASE_URL points it at the test database itself.
    # Webhook receivers of these tests listen on loopback, which the operator must allow.
    env = dict(os.environ, DATABASE_URL=url_of_database, DJANGO_SETTINGS_MODULE="portal.settings.test",
               PORT=str(port), PORTAL_PUBLIC_PORT=str(port), PORTAL_WEBHOOK_ALLOWED_NETWORKS=LOOPBACK)
    log = open(ARTIFACTS.mkdir(exist_ok=True) or ARTIFACTS / "live-server.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "portal.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--timeout", "120", "--config", str(Path(__file__).parent.parent / "gunicorn_warm.py")],
        env=env, cwd=settings.BASE_DIR, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"live server did not start; see {ARTIFACTS / 'live-server.log'}")
            time.sleep(0.2)

    def url(slug: str | None, path: str = "/") -> str:
        return f"http://{factories.host(slug)}:{port}{path}"

    url.port = port
    yield url
    proc.terminate()
    proc.wait(timeout=15)
    log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not AXE_JS.exists():
        raise RuntimeError("axe-core is not installed: `make axe` (npm ci --prefix tests/browser)")

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        raise RuntimeError("Chromium is not installed: `make chromium` (apt-get install chromium)")
    with sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield instance
        instance.close()


def _context(browser, width: int, height: int):
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(15_000)
    # An init script, not page.add_script_tag: the pages' Content-Security-Policy refuses inline
    # scripts (rightly), while init scripts are added by the browser itself before the page's own.
    context.add_init_script(path=AXE_JS)
    return context


@pytest.fixture
def page(browser, committed):
    context = _context(browser, 1280, 860)
    yield context.new_page()
    context.close()


@pytest.fixture
def phone_page(browser, committed):
    """A phone-sized viewport (390 x 844, as an iPhone 12-15)."""
    context = _context(browser, 390, 844)
    yield context.new_page()
    context.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


SETTLED = """() => !document.querySelector('.htmx-request, .htmx-added, .htmx-settling, .htmx-swapping')
    && document.getAnimations().every(a => !(a instanceof CSSTransition) || a.playState !== 'running')"""


def assert_accessible(page, name: str) -> None:
    """axe-core on the page as it is now: no serious or critical violation (WCAG 2.x A/AA rules and
    axe's best practices). The full report of a failing page is kept as test-artifacts/axe-<name>.json."""
    # Content htmx has just swapped in fades in (.htmx-added, CSS transitions): axe would measure
    # the contrast of a half-transparent frame. Wait (bounded) until the page has settled.
    page.wait_for_function(SETTLED, timeout=5_000)
    violations = page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ["violations"]});
        return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary}))}));
    }""")
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    if serious:
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / f"axe-{name}.json").write_text(json.dumps(serious, indent=2))
    assert not serious, f"{name}: " + "; ".join(
        f"{v['impact']} {v['id']} ({v['help']}) at " + ", ".join(n["target"] for n in v["nodes"][:4])
        for v in serious)


def sign_in(page, server, slug: str, email: str, password: str = factories.PASSWORD) -> None:
    page.goto(server(slug, "/login/"))
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server(slug, "/"))
