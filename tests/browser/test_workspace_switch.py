"""Dana belongs to acme and globex: one sign-in, and the menu takes her from one to the other."""

import pytest

from tests.browser.conftest import assert_accessible, screenshot, sign_in

pytestmark = pytest.mark.browser


def test_dana_switches_workspace_from_the_menu_without_her_password(page, server):
    sign_in(page, server, "acme", "dana@example.test")
    page.locator(".usermenu summary").click()
    assert_accessible(page, "workspace-menu")
    screenshot(page, "workspace-menu")
    page.get_by_test_id("switch-globex").click()
    page.wait_for_url(server("globex", "/"))
    assert page.get_by_test_id("tenant-name").inner_text() == "Globex Corporation"
    assert "ticket" not in page.url  # the one-time ticket does not stay in the address bar
    assert_accessible(page, "workspace-switched")
    screenshot(page, "workspace-switched")
    # Both sessions stay open, each on its own host.
    page.goto(server("acme", "/"))
    assert page.get_by_test_id("tenant-name").inner_text() == "Acme Corp"
