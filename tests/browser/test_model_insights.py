"""Bob looks into his data and model: relationships between columns, the lineage card, the
precision-recall table, and sets a decision threshold from the version page."""

import pytest

from tests.browser.conftest import assert_accessible, screenshot, sign_in
from tests.mlcore.conftest import churn_csv, upload_dataset

pytestmark = pytest.mark.browser


def test_bob_reads_relationships_and_sets_a_threshold(page, server, api_as):
    from tests.mlcore.test_prediction_apis import train_model

    bob_api = api_as("bob")
    dataset = upload_dataset(bob_api, churn_csv(rows=400), filename="churn.csv")
    trained = train_model(bob_api, dataset["id"])
    sign_in(page, server, "acme", "bob@acme.test")

    page.goto(server("acme", f"/datasets/{dataset['id']}/"))
    assert page.get_by_test_id("lineage").get_by_role("link", name="Churn v1").is_visible()
    page.get_by_test_id("relationships-link").click()
    page.select_option("#id_target", "monthly")
    page.get_by_role("button", name="Compare").click()
    page.get_by_test_id("target-correlations").wait_for()
    assert page.get_by_test_id("correlation-matrix").locator("td").count() == 4  # tenure, monthly
    assert_accessible(page, "dataset-relationships")
    screenshot(page, "dataset-relationships")

    page.goto(server("acme", f"/model-versions/{trained['model_version']}/"))
    assert page.get_by_test_id("threshold-table").locator("tbody tr").count() == 19
    page.fill("#id_threshold", "0.3")
    page.get_by_test_id("threshold-save").click()
    page.wait_for_url(server("acme", f"/model-versions/{trained['model_version']}/#threshold"))
    assert "at least 0.3" in page.get_by_test_id("threshold-current").inner_text()
    assert page.locator("[data-testid=threshold-table] tr.current th").inner_text().startswith("0.3")
    page.get_by_test_id("threshold").scroll_into_view_if_needed()
    assert_accessible(page, "decision-threshold")
    screenshot(page, "decision-threshold")
