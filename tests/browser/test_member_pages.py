"""Signing in and member management in headless Chromium."""

import pytest

from tests.browser.conftest import assert_accessible, screenshot, sign_in

pytestmark = pytest.mark.browser


def test_alice_signs_in_and_sees_the_members_of_acme(page, server):
    page.goto(server("acme", "/login/"))
    assert page.get_by_role("heading", name="Sign in to Acme Corp").is_visible()
    assert_accessible(page, "login")
    screenshot(page, "login")
    sign_in(page, server, "acme", "alice@acme.test")
    assert page.get_by_test_id("tenant-name").inner_text() == "Acme Corp"
    assert page.get_by_test_id("role-badge").inner_text().lower() == "admin"
    assert_accessible(page, "overview-admin")

    page.get_by_test_id("nav-members").click()
    page.wait_for_url(server("acme", "/members/"))
    rows = page.get_by_test_id("member-row")
    assert rows.count() == 5
    emails = " ".join(rows.all_inner_texts())
    for email in ["alice@acme.test", "bob@acme.test", "vera@acme.test", "audrey@acme.test",
                  "dana@example.test"]:
        assert email in emails
    assert "charlie@globex.test" not in emails
    assert_accessible(page, "members")
    screenshot(page, "members")


def test_vera_finds_no_member_management(page, server):
    sign_in(page, server, "acme", "vera@acme.test")
    assert page.get_by_test_id("role-badge").inner_text().lower() == "viewer"
    assert page.get_by_test_id("nav-members").count() == 0
    response = page.goto(server("acme", "/members/"))
    assert response.status == 403
    assert page.get_by_test_id("member-row").count() == 0
    assert_accessible(page, "vera-members-403")
    screenshot(page, "vera-members-403")
