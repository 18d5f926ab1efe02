"""One journey per kind of user, in Chromium, each page checked by axe-core and kept as a screenshot:
the tenant admin (invite, role, member limits, usage), the auditor (filter, export, verify), the
business user's compare-and-promote step, and the platform operator (create a tenant, set limits)."""

import re

import pytest

from tests import factories
from tests.browser.conftest import assert_accessible, screenshot, sign_in
from tests.mlcore.conftest import churn_csv, upload_dataset

pytestmark = pytest.mark.browser


def look(page, name: str) -> None:
    assert_accessible(page, name)
    screenshot(page, name)


def test_alice_invites_erin_sets_her_role_and_limits_and_reads_usage(page, server):
    sign_in(page, server, "acme", "alice@acme.test")
    page.goto(server("acme", "/members/"))
    page.get_by_label("E-mail").fill("erin@acme.test")
    page.get_by_label("Role", exact=True).select_option("viewer")
    page.get_by_role("button", name="Add member").click()
    erin = page.get_by_test_id("member-row").filter(has_text="erin@acme.test")
    erin.wait_for()
    notice = page.locator(".messages").inner_text()
    assert "erin@acme.test" in notice and "/set-password/" not in notice  # the link goes by mail only
    look(page, "journey-admin-invited")

    erin.get_by_label("Role of erin@acme.test").select_option("member")
    erin.get_by_role("button", name="Save").click()
    page.wait_for_load_state()
    erin = page.get_by_test_id("member-row").filter(has_text="erin@acme.test")
    assert erin.get_by_label("Role of erin@acme.test").input_value() == "member"

    page.goto(server("acme", "/members/limits/"))
    limits = page.get_by_test_id("limits-erin@acme.test")
    limits.get_by_label("CPU-seconds per month").fill("120")
    limits.get_by_role("button", name="Save").click()
    page.wait_for_url(server("acme", "/members/limits/"))
    assert "Saved the limits of erin@acme.test." in page.locator(".messages").inner_text()
    assert page.get_by_test_id("limits-erin@acme.test").get_by_label("CPU-seconds per month").input_value() == "120"
    look(page, "journey-admin-member-limits")

    page.goto(server("acme", "/usage/"))
    look(page, "journey-admin-usage")


def test_audrey_filters_exports_and_verifies_the_audit_log(page, server):
    sign_in(page, server, "acme", "audrey@acme.test")
    assert page.get_by_test_id("nav-datasets").count() == 0  # an auditor sees no data
    page.goto(server("acme", "/audit/"))
    page.get_by_label("Action").fill("auth.login")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r".*action=auth\.login.*"))
    rows = page.get_by_test_id("audit-row")
    assert rows.count() >= 1
    assert all("auth.login" in text for text in rows.all_inner_texts())
    look(page, "journey-auditor-filtered")

    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    with open(download.value.path(), encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    assert lines[0].startswith("seq,") and len(lines) >= 2
    assert all(",auth.login," in line for line in lines[1:])

    page.get_by_test_id("audit-verify").click()
    assert page.get_by_text("The audit trail is intact").is_visible()
    look(page, "journey-auditor-verified")


def test_bob_compares_two_versions_and_promotes_one_after_the_confirmation(page, server, api_as):
    from tests.mlcore.test_prediction_apis import train_model

    bob_api = api_as("bob")
    dataset = upload_dataset(bob_api, churn_csv(rows=400), filename="churn.csv")
    first = train_model(bob_api, dataset["id"])
    second = train_model(bob_api, dataset["id"], algorithm="random_forest")
    sign_in(page, server, "acme", "bob@acme.test")

    page.goto(server("acme", f"/models/{first['model']}/"))
    page.get_by_test_id("compare-selected").click()
    page.wait_for_url(re.compile(r".*/compare/\?.*"))
    look(page, "journey-business-compare")

    page.goto(server("acme", f"/model-versions/{second['model_version']}/promote/"))
    look(page, "journey-business-promote-confirm")
    page.get_by_test_id("confirm-promote").click()
    page.wait_for_load_state()
    page.goto(server("acme", f"/models/{first['model']}/"))
    production = page.get_by_test_id("version-row").filter(has=page.get_by_test_id("production-badge"))
    assert production.get_by_role("link", name="v2").is_visible()
    look(page, "journey-business-promoted")


def test_the_operator_creates_a_tenant_and_gives_it_limits_in_units(page, server):
    page.goto(server(None, "/admin/login/"))
    page.fill("#id_username", "ops@portal.test")
    page.fill("#id_password", factories.PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(server(None, "/admin/"))
    look(page, "journey-operator-console")

    page.goto(server(None, "/admin/tenants/tenant/new/"))
    page.get_by_label("Slug").fill("initech")
    page.get_by_label("Name").fill("Initech")
    page.get_by_label("First admin's e-mail").fill("peter@initech.test")
    page.get_by_role("button", name="Create tenant").click()
    page.wait_for_url(re.compile(r".*/admin/tenants/tenant/\d+/change/$"))
    assert "Created Initech" in page.locator(".messagelist").inner_text()
    page.get_by_label("Storage (MB)").fill("2048")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(re.compile(r".*/admin/tenants/tenant/$"))
    look(page, "journey-operator-tenants")

    from tenants.limits.quotas import effective_limits
    from tenants.models import Tenant

    assert effective_limits(Tenant.objects.get(slug="initech"))["storage_bytes"] == 2048 * 1024 * 1024


def test_vera_as_a_viewer_reads_what_was_shared_with_her_and_nothing_more(page, server, api_as):
    from tests.mlcore.test_prediction_apis import train_model

    bob_api = api_as("bob")
    shared = upload_dataset(bob_api, churn_csv(rows=200), filename="shared.csv")
    upload_dataset(bob_api, churn_csv(rows=50, seed=9), filename="private.csv")
    trained = train_model(bob_api, shared["id"])
    for kind, object_id in (("datasets", shared["id"]), ("models", trained["model"])):
        response = bob_api.post(f"/api/v1/{kind}/{object_id}/share/",
                                {"email": "vera@acme.test", "permission": "view"}, format="json")
        assert response.status_code in (200, 201), response.content

    sign_in(page, server, "acme", "vera@acme.test")
    assert page.get_by_test_id("nav-jobs").count() == 0
    look(page, "journey-viewer-overview")
    page.goto(server("acme", "/datasets/"))
    listed = page.locator("table").inner_text()
    assert "shared" in listed and "private" not in listed
    page.goto(server("acme", f"/datasets/{shared['id']}/"))
    assert page.get_by_test_id("train-from-dataset").count() == 0
    look(page, "journey-viewer-dataset")
    page.goto(server("acme", f"/model-versions/{trained['model_version']}/"))
    assert page.get_by_test_id("promote-link").count() == 0
    assert page.get_by_test_id("threshold-save").count() == 0
    assert page.locator("#try-it").count() == 0  # viewing is not using
    assert page.locator("a[href^='/jobs/']").count() == 0  # Bob's jobs are his: no link to a 403
    look(page, "journey-viewer-model")
    assert page.goto(server("acme", "/jobs/")).status == 403
