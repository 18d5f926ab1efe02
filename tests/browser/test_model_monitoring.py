"""Bob reads his production model's monitoring: the drift chart with its threshold, and the numbers."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.browser.conftest import assert_accessible, screenshot, sign_in
from tests.mlcore.conftest import churn_csv, upload_dataset
from tests.mlcore.test_monitoring import rows_of, shifted

pytestmark = pytest.mark.browser


def test_bob_sees_drift_over_time_on_the_model_page(page, server, api_as, acme):
    from mlcore.services import monitoring
    from tests.mlcore.test_prediction_apis import train_model

    bob_api = api_as("bob")
    dataset = upload_dataset(bob_api, churn_csv(rows=400), filename="churn.csv")
    trained = train_model(bob_api, dataset["id"])
    today = timezone.now().date()
    days = [today - timedelta(days=n) for n in (3, 2, 1, 0)]
    for i, day in enumerate(days):
        content = churn_csv(rows=300, seed=20 + i)
        rows = rows_of(shifted(content) if day == today else content)
        monitoring.samples_store(tenant=acme, version_id=trained["model_version"], day=day, rows=rows,
                                 predictions=["no"] * len(rows), source="online")
        monitoring.monitoring_report_run(tenant=acme, version_id=trained["model_version"], day=day)

    sign_in(page, server, "acme", "bob@acme.test")
    page.goto(server("acme", f"/models/{trained['model']}/"))
    chart = page.get_by_test_id("monitoring-chart")
    chart.scroll_into_view_if_needed()
    assert chart.locator("svg line.threshold").count() == 1
    assert chart.locator("svg circle").count() == 4 and chart.locator("svg circle.over").count() == 1
    rows = page.get_by_test_id("monitoring-row")
    assert rows.count() == 4
    assert "drift" in rows.first.inner_text() and today.isoformat() in rows.first.inner_text()
    assert "drift" not in rows.last.locator("td").last.inner_text()
    assert_accessible(page, "model-monitoring")
    screenshot(page, "model-monitoring")
