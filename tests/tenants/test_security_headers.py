"""Response headers (CSP, framing, referrer, sniffing), HTTPS in production, and templates that the
Content-Security-Policy does not have to loosen for: no inline script, handler or style."""

import base64
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from tests import factories

pytestmark = pytest.mark.django_db

BASE_DIR = Path(settings.BASE_DIR)


def csp_of(response) -> dict[str, str]:
    policy = response["Content-Security-Policy"]
    return {d.split()[0]: " ".join(d.split()[1:]) for d in policy.split("; ")}


@pytest.mark.parametrize(("host", "path"), [
    ("acme.localhost", "/login/"),
    ("acme.localhost", "/api/v1/me/"),
    ("acme.localhost", "/no-such-page/"),
    ("localhost", "/"),
    ("localhost", "/admin/login/"),
    ("evil.example", "/"),
])
def test_every_response_carries_the_security_headers(host, path):
    response = Client(HTTP_HOST=host).get(path)
    csp = csp_of(response)
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self'"
    assert csp["style-src"] == "'self'"
    assert csp["object-src"] == "'none'"
    assert csp["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "unsafe-eval" not in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_forms_may_post_only_to_this_site_and_its_workspaces(public_client):
    form_action = csp_of(public_client.get("/"))["form-action"]
    assert form_action == "'self' http://*.localhost:8000"


def test_pages_of_signed_in_people_carry_it_too(page_as):
    response = page_as("alice").get("/audit/")
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"


def test_https_redirect_and_hsts_with_the_production_values(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    client = Client(HTTP_HOST="acme.localhost")
    plain = client.get("/login/")
    assert plain.status_code == 301
    assert plain["Location"] == "https://acme.localhost/login/"
    secure = client.get("/login/", secure=True)
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert client.get("/healthz").status_code == 200  # probes over plain HTTP inside the cluster


def test_production_settings_pass_check_deploy_and_are_strict(tmp_path):
    key = base64.b64encode(os.urandom(32)).decode()
    # The browser tests' conftest allows async-unsafe calls in this process; a deployment does not.
    inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {**inherited, "DJANGO_SETTINGS_MODULE": "portal.settings.production",
           "DJANGO_SECRET_KEY": secrets.token_urlsafe(60), "PORTAL_MASTER_KEYS": key,
           "PORTAL_SIGNING_KEY": key, "PORTAL_BASE_DOMAIN": "portal.example.com",
           "DATABASE_URL": settings.DATABASE_URL, "REDIS_URL": settings.REDIS_URL,
           "PORTAL_VAR_DIR": str(tmp_path)}
    check = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                           cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "no issues" in check.stdout
    script = ("from django.conf import settings as s; print(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE,"
              " s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS >= 31536000, s.DEBUG, s.PASSWORD_HASHERS[0])")
    shown = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=BASE_DIR, env=env,
                           capture_output=True, text=True, timeout=120)
    assert shown.stdout.strip().splitlines()[-1].split() == ["True", "True", "True", "True", "False",
                                    "django.contrib.auth.hashers.Argon2PasswordHasher"]


def test_production_refuses_to_start_without_a_signing_key(tmp_path):
    key = base64.b64encode(os.urandom(32)).decode()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings.production",
           "DJANGO_SECRET_KEY": secrets.token_urlsafe(60), "PORTAL_MASTER_KEYS": key,
           "PORTAL_SIGNING_KEY": "", "DATABASE_URL": settings.DATABASE_URL,
           "REDIS_URL": settings.REDIS_URL, "PORTAL_VAR_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=BASE_DIR, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "PORTAL_SIGNING_KEY must be set" in result.stderr


# --- what the policy relies on: our templates have nothing inline --------------------------------
TEMPLATES = sorted((BASE_DIR / "templates").rglob("*.html"))


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(BASE_DIR)))
def test_no_template_has_inline_script_style_or_handlers(template):
    html = template.read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", html), \
        "inline <script>: move it to static/js/"
    assert not re.search(r"<style[\s>]", html), "inline <style>: move it to static/css/"
    assert not re.search(r"\sstyle\s*=", html), "style attribute: use a class in static/css/portal.css"
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler: bind it in static/js/"
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "a CDN or other origin: vendor it under static/"


def test_the_api_docs_load_swagger_from_our_own_static_files(anon):
    page = anon.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "cdn" not in html.lower() and "//" not in re.sub(r"<!DOCTYPE[^>]*>", "", html).replace("://", "")
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui-bundle.js" in a for a in assets)
    script = anon.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    for asset in assets:
        if asset.startswith("/static/"):
            assert anon.get(asset).status_code == 200, asset


def test_api_docs_for_a_signed_in_person_render_too(world):
    client = factories.logged_in_client(world.alice, world.acme)
    assert client.get("/api/docs/").status_code == 200
