"""Bob uploads a new version of his data from its page, then makes a schedule and pauses it."""

import pytest

from tests.browser.conftest import assert_accessible, screenshot, sign_in
from tests.mlcore.conftest import churn_csv, upload_dataset

pytestmark = pytest.mark.browser


def test_bob_uploads_a_version_and_schedules_scoring_it(page, server, api_as, tmp_path):
    from tests.mlcore.test_prediction_apis import train_model

    bob_api = api_as("bob")
    dataset = upload_dataset(bob_api, churn_csv(rows=300), filename="churn.csv")
    trained = train_model(bob_api, dataset["id"])
    sign_in(page, server, "acme", "bob@acme.test")

    page.goto(server("acme", f"/datasets/{dataset['id']}/"))
    page.get_by_test_id("new-version").click()
    assert_accessible(page, "dataset-new-version")
    more = tmp_path / "churn-2.csv"
    more.write_bytes(churn_csv(rows=120, seed=4))
    page.set_input_files("#id_file", str(more))
    page.get_by_role("button", name="Upload").click()
    page.get_by_test_id("dataset-versions").wait_for()
    assert page.get_by_test_id("dataset-version").inner_text() == "2"

    page.get_by_test_id("schedules-link").click()
    page.select_option("#id_action", "score")
    page.select_option("#id_model", str(trained["model"]))
    page.select_option("#id_frequency", "cron")
    page.fill("#id_cron", "30 6 * * 1-5")
    page.get_by_role("button", name="Make the schedule").click()
    page.get_by_test_id("schedule-row").wait_for()
    assert "30 6 * * 1-5" in page.get_by_test_id("schedules-table").inner_text()
    assert_accessible(page, "schedules")
    screenshot(page, "schedules")

    page.get_by_test_id("schedule-row").get_by_role("link").click()
    page.get_by_test_id("pause").click()
    page.get_by_test_id("resume").wait_for()
    assert page.get_by_test_id("schedule-state").inner_text() == "paused"
    assert_accessible(page, "schedule-detail")
    screenshot(page, "schedule-detail")
