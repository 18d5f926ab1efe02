"""The API tokens page in a real browser: the copy button under the CSP, nothing clipped."""

import pytest

from tests.browser.conftest import screenshot, sign_in

pytestmark = pytest.mark.browser


def test_alice_copies_her_new_token_and_sees_every_revoke_button_whole(page, server):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server("acme", "/")[:-1])
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    sign_in(page, server, "acme", "alice@acme.test")

    page.goto(server("acme", "/account/tokens/"))
    page.get_by_label("Name").fill("a rather long token name for the deploy pipeline")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_test_id("token-secret").inner_text()

    page.get_by_test_id("copy-token").click()
    page.get_by_text("Copied to the clipboard.").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == secret

    revoke = page.get_by_role("button", name="Revoke").first
    table = page.get_by_test_id("own-tokens")
    wrap = table.locator("xpath=..")
    box, frame = revoke.bounding_box(), wrap.bounding_box()
    assert box["x"] >= frame["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"]
    assert wrap.evaluate("el => el.scrollWidth <= el.clientWidth")  # nothing hidden sideways
    screenshot(page, "tokens")
    assert problems == []
