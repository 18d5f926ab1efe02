"""Navigation and lists at phone and desktop widths, in headless Chromium, each page checked by axe-core."""

import pytest
from django_tenants.utils import tenant_context

from tests.browser.conftest import assert_accessible, screenshot, sign_in

pytestmark = pytest.mark.browser

SIDEWAYS = "() => document.scrollingElement.scrollWidth"


def test_at_390px_alice_opens_the_menu_and_reaches_an_admin_page_without_scrolling_sideways(phone_page, server):
    page = phone_page
    sign_in(page, server, "acme", "alice@acme.test")
    menu = page.get_by_test_id("nav-toggle")
    security = page.get_by_test_id("nav-security")
    assert menu.is_visible() and not security.is_visible()  # folded away until asked for
    assert page.evaluate(SIDEWAYS) <= 390
    rows = page.evaluate(ROWS)
    assert abs(rows["user"] - rows["brand"]) <= 8, rows["widths"]  # one top row: workspace, menu, user
    assert_accessible(page, "phone-overview")

    menu.click()
    assert menu.get_attribute("aria-expanded") == "true"
    assert security.is_visible()
    box = security.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert page.evaluate(SIDEWAYS) <= 390
    assert_accessible(page, "phone-menu-open")
    screenshot(page, "phone-menu-open")

    page.keyboard.press("Escape")  # closes and gives focus back to the button
    assert not security.is_visible()
    assert page.evaluate("() => document.activeElement.dataset.testid") == "nav-toggle"
    ring = page.evaluate("() => { const s = getComputedStyle(document.activeElement);"
                         " return [s.outlineStyle, parseFloat(s.outlineWidth)]; }")
    assert ring[0] != "none" and ring[1] >= 2, f"keyboard focus is not visible: {ring}"

    menu.click()
    security.click()
    page.wait_for_url(server("acme", "/settings/security/"))
    assert page.evaluate(SIDEWAYS) <= 390
    assert_accessible(page, "phone-security")
    screenshot(page, "phone-security")


def test_at_1280px_the_audit_table_shows_its_details_column_and_labelled_filters(page, server, acme):
    from tenants.auditing import audit

    audit.record("dataset.share", tenant=acme, object_type="dataset", object_id=42,
                 details={"email": "someone.with.a.long.address@example.test", "permission": "view",
                          "note": "a rather long detail that has to wrap inside its column " * 3})
    sign_in(page, server, "acme", "alice@acme.test")
    page.goto(server("acme", "/audit/"))
    page.get_by_label("Actor (e-mail or id)").fill("alice@acme.test")
    assert page.get_by_label("Action").get_attribute("placeholder") is None
    screenshot(page, "audit-wide")
    wrap = page.locator(".table-wrap:has([data-testid=audit-table])")
    assert wrap.evaluate("w => w.scrollWidth <= w.clientWidth"), "the audit table scrolls sideways"
    details = page.get_by_role("columnheader", name="Details").bounding_box()
    edge = wrap.bounding_box()
    assert details["x"] + details["width"] <= edge["x"] + edge["width"] + 1
    assert details["width"] >= 200
    assert page.evaluate(SIDEWAYS) <= 1280
    assert_accessible(page, "audit-wide")


def test_bob_filters_the_lists_and_the_filters_stay_in_the_url(page, server, acme, bob):
    from mlcore.models import Dataset

    with tenant_context(acme):
        for name in ("Churn March", "Churn April", "Leads"):
            Dataset.objects.create(name=name, owner=bob, original_filename="x.csv", format="csv",
                                   size_bytes=10, sha256="0" * 64, rows=1, column_count=1)
    sign_in(page, server, "acme", "bob@acme.test")
    page.goto(server("acme", "/datasets/"))
    page.get_by_label("Search").fill("churn")
    page.get_by_label("Owner").select_option("me")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(server("acme", "/datasets/?search=churn&owner=me"))
    assert page.get_by_test_id("dataset-row").count() == 2
    assert_accessible(page, "datasets-filtered")
    screenshot(page, "datasets-filtered")

    page.goto(server("acme", "/models/?task=regression"))
    assert_accessible(page, "models-filtered")
    page.goto(server("acme", "/jobs/?status=failed"))
    assert page.get_by_label("Status").input_value() == "failed"
    assert_accessible(page, "jobs-filtered")


ROWS = """() => {
    const top = el => Math.round(el.getBoundingClientRect().top);
    const items = [...document.querySelectorAll('#mainnav a')];
    return {brand: top(document.querySelector('.brand')),
            user: top(document.querySelector('.usermenu > summary')),
            navRows: new Set(items.map(top)).size, items: items.length,
            widths: [...document.querySelector(".topbar-inner").children].map(e => e.className + ":" + Math.round(e.getBoundingClientRect().width) + "@" + top(e))};
}"""


@pytest.mark.parametrize("email", ["alice@acme.test", "bob@acme.test"])
def test_at_1280px_the_user_menu_stays_beside_the_brand_and_the_menu_fits_one_row(page, server, email):
    # Every item of an admin's (11) or a member's (7) main menu on one row, and the user menu
    # on the brand's row: it never drops alone onto a line of its own as the menu grows.
    sign_in(page, server, "acme", email)
    for path in ("/", "/models/", "/settings/security/" if email.startswith("alice") else "/schedules/"):
        page.goto(server("acme", path))
        rows = page.evaluate(ROWS)
        assert rows["items"] >= 7
        assert abs(rows["user"] - rows["brand"]) <= 8, rows
        assert rows["navRows"] == 1, rows
        assert page.evaluate(SIDEWAYS) <= 1280
    screenshot(page, f"topbar-1280-{email.split('@')[0]}")
