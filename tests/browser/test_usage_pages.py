"""The usage page in headless Chromium: quota bars and daily charts."""

import pytest
from django.utils import timezone

from tests.browser.conftest import assert_accessible, screenshot, sign_in

pytestmark = pytest.mark.browser


def test_alice_sees_her_workspaces_usage_with_charts(page, server, world):
    from datetime import timedelta

    from tenants.limits import usage
    from tenants.models import UsageDaily

    today = timezone.now().date()
    for back in range(12):
        UsageDaily.objects.create(tenant=world.acme, user=world.bob, day=today - timedelta(days=back),
                                  cpu_ms=(back + 1) * 7_000, jobs=back % 4 + 1, predicted_rows=1_000 * back,
                                  api_requests=50 * back)
    usage.invalidate(world.acme)
    sign_in(page, server, "acme", "alice@acme.test")
    page.get_by_test_id("nav-usage").click()
    assert page.get_by_test_id("quotas").locator("meter").count() == 7
    charts = page.get_by_test_id("usage-charts").locator("svg")
    assert charts.count() == 4
    assert charts.first.locator("rect").count() >= 30
    assert page.get_by_test_id("usage-members").locator("text=bob@acme.test").count() == 1
    this_month = sum((back + 1) * 7 for back in range(12) if (today - timedelta(days=back)).month == today.month)
    assert f"{this_month:,}" in page.get_by_test_id("quota-cpu_seconds").inner_text()
    assert_accessible(page, "usage")
    screenshot(page, "usage")
