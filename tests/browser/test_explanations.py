"""Bob tries a row on the version page and reads why the model predicted what it did."""

import pytest

from tests.browser.conftest import assert_accessible, screenshot, sign_in
from tests.mlcore.conftest import churn_csv, upload_dataset

pytestmark = pytest.mark.browser


def test_bob_sees_each_columns_contribution_to_his_try(page, server, api_as):
    from tests.mlcore.test_prediction_apis import train_model

    bob_api = api_as("bob")
    dataset = upload_dataset(bob_api, churn_csv(rows=400), filename="churn.csv")
    trained = train_model(bob_api, dataset["id"], algorithm="hist_gradient_boosting", params={"max_iter": 30})
    sign_in(page, server, "acme", "bob@acme.test")

    page.goto(server("acme", f"/model-versions/{trained['model_version']}/"))
    form = page.get_by_test_id("try-form")
    for name, value in (("tenure", "2"), ("monthly", "99"), ("plan", "basic"), ("autopay", "no")):
        form.get_by_label(name).fill(value)
    form.get_by_role("button", name="Predict").click()
    chart = page.get_by_test_id("explain-chart")
    chart.wait_for()
    svg = chart.locator("svg[role=img]")
    assert "from the baseline" in svg.get_attribute("aria-label")
    assert chart.locator("rect").count() == 4  # one bar per column
    page.get_by_text("The numbers").click()
    rows = page.get_by_test_id("explain-table").locator("tbody tr")
    assert rows.count() == 4
    assert sorted(rows.locator("th").all_inner_texts()) == ["autopay", "monthly", "plan", "tenure"]
    assert "Shapley values" in page.get_by_test_id("explain-method").inner_text()
    page.get_by_test_id("try-explanation").scroll_into_view_if_needed()
    assert_accessible(page, "try-it-explanation")
    screenshot(page, "try-it-explanation")
