"""The Content-Security-Policy in a real browser: no page is broken by it, nothing is refused."""

import pytest

from tests.browser.conftest import assert_accessible, screenshot, sign_in

pytestmark = pytest.mark.browser


def watch_console(page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


def test_alice_uses_the_security_pages_and_the_api_docs_without_csp_violations(page, server):
    problems = watch_console(page)
    sign_in(page, server, "acme", "alice@acme.test")

    response = page.goto(server("acme", "/audit/"))
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    assert page.get_by_test_id("audit-row").count() > 0
    page.get_by_test_id("audit-verify").click()
    assert page.get_by_text("The audit trail is intact").is_visible()
    assert_accessible(page, "audit-log")
    screenshot(page, "audit-log")

    page.goto(server("acme", "/account/two-factor/"))
    qr = page.get_by_test_id("totp-qr").locator("svg")
    assert qr.bounding_box()["width"] > 100
    assert_accessible(page, "two-factor-enrolment")
    screenshot(page, "two-factor-enrolment")

    page.goto(server("acme", "/account/tokens/"))
    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    assert page.get_by_test_id("token-secret").inner_text().startswith("mlp_")
    assert_accessible(page, "tokens")

    page.goto(server("acme", "/api/docs/"))
    page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
    assert "ML Portal API" in page.locator(".swagger-ui .info .title").inner_text()
    assert_accessible(page, "api-docs")
    screenshot(page, "api-docs")

    refused = [p for p in problems if "Content Security Policy" in p or "Refused" in p]
    assert refused == []
