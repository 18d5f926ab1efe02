"""Upload, profile, train and follow the job in headless Chromium, with a real worker."""

import re
import time

import pytest

from tests.browser.conftest import assert_accessible, screenshot, sign_in
from tests.mlcore.conftest import churn_csv

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WATCH_PROGRESS = """() => {
  const bar = document.querySelector('progress[data-upload-progress]');
  sessionStorage.setItem('seen', '[]');
  new MutationObserver((records) => {
    const seen = JSON.parse(sessionStorage.getItem('seen'));
    for (const r of records) seen.push(r.attributeName + '=' + bar.getAttribute(r.attributeName));
    sessionStorage.setItem('seen', JSON.stringify(seen));
  }).observe(bar, {attributes: true});
}"""


def test_bob_uploads_trains_and_opens_the_model(page, server, worker, tmp_path):
    data = tmp_path / "churn.csv"
    data.write_bytes(churn_csv(rows=150_000))
    sign_in(page, server, "acme", "bob@acme.test")

    page.goto(server("acme", "/datasets/upload/"))
    page.evaluate(WATCH_PROGRESS)
    page.set_input_files("#id_file", str(data))
    page.fill("#id_name", "Churn")
    assert_accessible(page, "upload-form")
    screenshot(page, "upload-form")
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url(re.compile(r".*/datasets/\d+/$"), timeout=60_000)
    seen = page.evaluate("JSON.parse(sessionStorage.getItem('seen'))")
    assert "hidden=null" in seen, f"the progress bar was never shown: {seen}"
    assert seen[-1] == "value=100", f"the progress bar did not end full: {seen}"
    assert page.get_by_test_id("dataset-name").inner_text() == "Churn"
    assert "Uploaded Churn: 150,000 rows, 5 columns." in page.locator(".messages").inner_text()
    assert page.get_by_test_id("profile-row").count() == 5
    assert page.locator(".chart svg").count() >= 5
    assert_accessible(page, "dataset-profile")
    screenshot(page, "dataset-profile")

    page.get_by_test_id("train-from-dataset").click()  # the form opens on this dataset
    page.wait_for_selector("#id_target")
    algorithms = "() => [...document.querySelectorAll('#id_algorithm option')].map(o => o.value)"
    page.select_option("#id_target", "monthly")  # an amount: regression algorithms only
    page.wait_for_selector("#id_algorithm option[value=ridge]", state="attached")
    page.select_option("#id_target", "churned")  # words: classification algorithms only
    page.wait_for_selector("#id_algorithm option[value=ridge]", state="detached")
    assert page.evaluate(algorithms) == ["logistic_regression", "random_forest", "hist_gradient_boosting"]
    ticked = "() => document.querySelectorAll('input[name=features]:checked').length"
    page.get_by_test_id("features-none").click()
    assert page.evaluate(ticked) == 0
    page.get_by_test_id("features-all").click()
    assert page.evaluate(ticked) == 4
    page.select_option("#id_algorithm", "hist_gradient_boosting")
    page.wait_for_selector("#id_param_learning_rate")
    assert_accessible(page, "train-form")
    screenshot(page, "train-form")
    page.get_by_test_id("start-training").click()
    page.wait_for_url(re.compile(r".*/jobs/\d+/$"))

    progress, stages = [], set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = page.get_by_test_id("job-state").inner_text()
        progress.append(int(page.get_by_test_id("job-progress").inner_text().rstrip("%")))
        stages.add(page.get_by_test_id("job-message").inner_text().split(" —")[0])
        if state in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.3)
    assert_accessible(page, "job-done")
    screenshot(page, "job-done")
    assert state == "succeeded", page.get_by_test_id("job-status").inner_text()
    assert progress[-1] == 100
    assert progress == sorted(progress), f"progress went backwards: {progress}"
    assert len(set(progress)) >= 3, f"the bar did not move while running: {progress}"
    assert "Evaluating (hold-out split)" in stages, f"the evaluation stage was never shown: {stages}"
    assert re.fullmatch(r"[\d.]+ s|\d+ min \d\d s", page.get_by_test_id("job-elapsed").inner_text())

    page.get_by_test_id("result-link").click()
    page.wait_for_url(re.compile(r".*/model-versions/\d+/$"))
    for chart in ("roc-chart", "importance-chart", "confusion-matrix", "model-card"):
        assert page.get_by_test_id(chart).is_visible()
    assert_accessible(page, "model-version")
    screenshot(page, "model-version")


def test_bob_scores_a_dataset_watches_the_job_and_downloads_the_result(page, server, worker, api_as):
    from tests.mlcore.conftest import upload_dataset

    bob_api = api_as("bob")
    data = upload_dataset(bob_api, churn_csv(rows=200_000), filename="customers.csv", name="Customers")
    job = bob_api.post("/api/v1/training-jobs/", {"dataset": data["id"], "model_name": "Churn",
                                                  "target": "churned", "algorithm": "logistic_regression"},
                       format="json").json()
    deadline = time.monotonic() + 90
    while bob_api.get(f"/api/v1/jobs/{job['id']}/").json()["status"] != "succeeded":
        assert time.monotonic() < deadline, "training did not finish"
        time.sleep(0.5)

    sign_in(page, server, "acme", "bob@acme.test")
    page.goto(server("acme", "/predict/"))
    page.select_option("#id_model_version", label="Churn v1 (production)")
    page.select_option("#id_dataset", label="Customers (200,000 rows)")
    assert_accessible(page, "predict-form")
    screenshot(page, "predict-form")
    page.get_by_test_id("start-prediction").click()
    page.wait_for_url(re.compile(r".*/jobs/\d+/$"))
    progress = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = page.get_by_test_id("job-state").inner_text()
        progress.append(int(page.get_by_test_id("job-progress").inner_text().rstrip("%")))
        if state in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.2)
    assert state == "succeeded", page.get_by_test_id("job-status").inner_text()
    assert progress == sorted(progress) and progress[-1] == 100
    assert "200,000 rows scored" in page.get_by_test_id("prediction-result").inner_text()
    assert_accessible(page, "prediction-done")
    screenshot(page, "prediction-done")
    with page.expect_download() as download:
        page.get_by_test_id("download-csv").click()
    path = download.value.path()
    with open(path, "rb") as fh:
        header = fh.readline().decode().strip()
        lines = 1 + sum(1 for _ in fh)
    assert header == '"row","prediction","proba_false","proba_true"'
    assert lines == 200_001


def test_bob_sees_a_refused_file_in_place_then_the_job_pages_message_and_tries_a_sample_row(page, server, api_as):
    from tests.mlcore.conftest import upload_dataset
    from tests.mlcore.test_prediction_apis import train_model

    bob_api = api_as("bob")
    trained = train_model(bob_api, upload_dataset(bob_api, churn_csv(), filename="churn.csv")["id"])
    sign_in(page, server, "acme", "bob@acme.test")

    page.goto(server("acme", "/predict/"))
    page.set_input_files("#id_score_file", files=[{"name": "no-monthly.csv", "mimeType": "text/csv",
                                                   "buffer": b"tenure,plan,autopay\n2,basic,no\n"}])
    page.get_by_test_id("upload-and-score").click()
    error = page.get_by_test_id("upload-score-error")
    error.wait_for()
    assert "missing a column the model needs: 'monthly'" in error.inner_text()
    assert page.url == server("acme", "/predict/")
    assert_accessible(page, "predict-upload-refused")
    screenshot(page, "predict-upload-refused")
    assert [d["name"] for d in bob_api.get("/api/v1/datasets/").json()["results"]] == ["churn"]

    page.set_input_files("#id_score_file", files=[{"name": "fresh.csv", "mimeType": "text/csv",
                                                   "buffer": churn_csv(rows=60, seed=4)}])
    page.get_by_test_id("upload-and-score").click()
    page.wait_for_url(re.compile(r".*/jobs/\d+/$"))
    assert "Uploaded Scoring fresh.csv (60 rows); scoring started." in page.locator(".messages").inner_text()
    assert page.get_by_test_id("scored-version").inner_text() == "Churn v1"
    assert_accessible(page, "prediction-job-queued")
    screenshot(page, "prediction-job-queued")

    page.goto(server("acme", f"/model-versions/{trained['model_version']}/"))
    # The server's own check, past the browser's `required`: its 400 replaces the form in place.
    page.evaluate("document.querySelectorAll('[data-testid=try-form] input').forEach(i => i.required = false)")
    page.get_by_role("button", name="Predict").click()
    page.get_by_test_id("try-field-error").first.wait_for()
    assert "Enter a value for tenure." in page.get_by_test_id("try-form").inner_text()
    page.get_by_test_id("fill-sample").click()
    assert page.locator("input[name=f_plan]").input_value() in ("basic", "plus", "pro")
    page.locator("input[name=f_monthly]").fill("5000")
    page.get_by_role("button", name="Predict").click()
    page.get_by_test_id("try-prediction").wait_for()
    assert "Outside the range seen in training" in page.get_by_test_id("try-field-warning").inner_text()
    page.get_by_test_id("try-form").scroll_into_view_if_needed()
    assert_accessible(page, "try-it-sample-row")
    screenshot(page, "try-it-sample-row")
