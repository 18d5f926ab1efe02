"""Bob asks for the best model of his dataset and watches the leaderboard fill in, live."""

import pytest

from tests.browser.conftest import assert_accessible, screenshot, sign_in
from tests.mlcore.conftest import churn_csv, run_jobs, upload_dataset

pytestmark = pytest.mark.browser


def test_bob_finds_the_best_model_and_opens_it_from_the_leaderboard(page, server, api_as):
    from tests.mlcore.test_searches import one_turn

    dataset = upload_dataset(api_as("bob"), churn_csv(rows=400), filename="churn.csv")
    sign_in(page, server, "acme", "bob@acme.test")
    page.goto(server("acme", f"/datasets/{dataset['id']}/"))
    page.get_by_test_id("search-from-dataset").click()
    page.select_option("#id_target", "churned")
    page.get_by_label("Logistic regression").check()
    page.get_by_label("Random forest").check()
    page.fill("#id_model_name", "Churn (best)")
    assert_accessible(page, "search-form")
    page.get_by_test_id("start-search").click()
    page.get_by_test_id("no-trials").wait_for()

    # A worker runs one trial: the page, polling, shows it without a reload.
    one_turn()
    page.locator("[data-testid=trial]").first.wait_for(timeout=10_000)
    assert page.locator("[data-testid=trial]").count() == 1

    run_jobs()
    page.locator("[data-testid=search-board][data-status=succeeded]").wait_for(timeout=15_000)
    trials = page.locator("[data-testid=trial]")
    assert trials.count() >= 7  # 7 candidates on a quarter of the rows, then the better ones
    best = page.locator("[data-testid=trial][data-best=true]")
    assert best.count() == 1 and "best" in best.inner_text()
    assert_accessible(page, "search-leaderboard")
    screenshot(page, "search-leaderboard")

    page.get_by_test_id("result-link").click()
    page.wait_for_url("**/model-versions/*/")
    assert "Churn (best)" in page.locator("h1").inner_text()
