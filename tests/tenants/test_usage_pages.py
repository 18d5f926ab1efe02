"""Usage pages (tenants/views/usage.py) and the cached aggregates (tenants/limits/usage.py)."""

import csv
import io

import pytest
from django.test import Client
from django.utils import timezone

from tenants.limits import usage
from tenants.models import Membership, UsageDaily
from tests import factories

pytestmark = pytest.mark.django_db


def meter(tenant, user, **amounts):
    UsageDaily.objects.create(tenant=tenant, user=user, day=timezone.now().date(), **amounts)
    usage.invalidate(tenant)


@pytest.mark.parametrize("name", ["alice", "bob", "vera", "audrey"])
def test_every_member_sees_each_quota_as_a_bar_and_the_daily_charts(page_as, name):
    html = page_as(name).get("/usage/").content.decode()
    for key in ["storage_bytes", "datasets", "model_versions", "concurrent_jobs", "cpu_seconds",
                "predicted_rows", "api_requests_per_minute"]:
        assert f'data-testid="quota-{key}"' in html
    assert html.count("<meter") == 7
    assert html.count("<svg") == 4
    assert "of the month gone" in html


def test_only_admins_see_the_per_member_breakdown(page_as, world, acme):
    meter(acme, world.bob, cpu_ms=12_500, jobs=3, predicted_rows=40)
    alice = page_as("alice").get("/usage/").content.decode()
    assert 'data-testid="usage-members"' in alice
    assert "bob@acme.test" in alice and "12.5" in alice
    assert 'data-testid="usage-members"' not in page_as("bob").get("/usage/").content.decode()


def test_the_usage_cache_is_invalidated_when_usage_changes(api_as, world, acme):
    bob = api_as("bob")
    assert bob.get("/api/v1/usage/").json()["usage"]["cpu_seconds"] == 0
    from tenants.limits.quotas import meter_job

    meter_job(acme, user_id=world.bob.id, cpu_ms=2_000, peak_memory_bytes=10)
    assert bob.get("/api/v1/usage/").json()["usage"]["cpu_seconds"] == 2.0


def test_admins_export_per_member_rows_and_members_get_totals(page_as, world, acme):
    meter(acme, world.bob, cpu_ms=1000, jobs=1)
    meter(acme, world.dana, cpu_ms=3000, jobs=2)
    admin_rows = list(csv.DictReader(io.StringIO(page_as("alice").get("/usage/export.csv").content.decode())))
    assert {r["member"] for r in admin_rows} == {"bob@acme.test", "dana@example.test"}
    member_rows = list(csv.DictReader(io.StringIO(page_as("bob").get("/usage/export.csv").content.decode())))
    assert member_rows[0]["cpu_seconds"] == "4.0" and "member" not in member_rows[0]


def test_alice_sets_a_tighter_limit_for_bob_inside_the_plan(page_as, world):
    bob_m = Membership.objects.get(user=world.bob, tenant=world.acme)
    alice = page_as("alice")
    response = alice.post("/members/limits/", {"member": bob_m.id, f"m{bob_m.id}-concurrent_jobs": "1"})
    assert response.status_code == 302
    bob_m.refresh_from_db()
    assert bob_m.limits == {"concurrent_jobs": 1}
    too_much = alice.post("/members/limits/", {"member": bob_m.id, f"m{bob_m.id}-concurrent_jobs": "999"})
    assert too_much.status_code == 400
    assert b"less than or equal to 4" in too_much.content
    assert page_as("bob").get("/members/limits/").status_code == 403


def test_the_operator_page_lists_every_tenant_sorted_as_asked(world, acme, globex):
    meter(acme, world.bob, cpu_ms=5000)
    ops = factories.bind_session(Client(HTTP_HOST="localhost"), world.ops, None)
    html = ops.get("/ops/usage/?sort=cpu_seconds&dir=desc").content.decode()
    assert html.index(">acme<") < html.index(">globex<")
    assert 'aria-sort="descending"><a href="?sort=cpu_seconds">CPU-seconds ↓</a>' in html
    assert "Model versions</a>" in html and "Cpuseconds" not in html
    html = ops.get("/ops/usage/?sort=slug").content.decode()
    assert html.index(">acme<") < html.index(">globex<")
    assert factories.logged_in_client(world.alice, acme).get("/ops/usage/", HTTP_HOST="localhost").status_code == 302


def set_bobs_limits(page_as, world, **limits):
    """Alice sets Bob's own limits on the member limits page."""
    member = Membership.objects.get(tenant=world.acme, user=world.bob)
    data = {"member": str(member.id), **{f"m{member.id}-{k}": str(v) for k, v in limits.items()}}
    assert page_as("alice").post("/members/limits/", data).status_code == 302


def test_bob_sees_his_own_cpu_limit_where_it_is_tighter_and_whom_to_ask(page_as, world, acme):
    set_bobs_limits(page_as, world, cpu_seconds=2)
    meter(acme, world.bob, cpu_ms=4_000, jobs=1)
    meter(acme, world.alice, cpu_ms=30_000, jobs=1)

    html = page_as("bob").get("/usage/").content.decode()

    row = html.split('data-testid="quota-cpu_seconds"')[1].split('data-testid="quota-')[0]
    assert "4 of 2 s" in row
    assert "your limit" in row
    assert "the workspace's is 360,000 s" in row
    assert "ask Alice (alice@acme.test) to raise it" in row
    # Limits he has no own value for stay the workspace's.
    assert 'data-testid="own-limit"' not in html.split('data-testid="quota-storage_bytes"')[1].split(
        'data-testid="quota-datasets"')[0]


def test_alice_without_own_limits_sees_the_workspaces(page_as, world, acme):
    set_bobs_limits(page_as, world, cpu_seconds=2)
    meter(acme, world.bob, cpu_ms=4_000, jobs=1)
    html = page_as("alice").get("/usage/").content.decode()
    row = html.split('data-testid="quota-cpu_seconds"')[1].split('data-testid="quota-')[0]
    assert "4 of 360,000 s" in row
    assert 'data-testid="own-limit"' not in html


def test_the_usage_api_tells_bob_his_own_limits_and_use(page_as, api_as, world, acme):
    set_bobs_limits(page_as, world, cpu_seconds=2, predicted_rows=50)
    meter(acme, world.bob, cpu_ms=4_000, jobs=1, predicted_rows=7)
    body = api_as("bob").get("/api/v1/usage/").json()
    assert body["limits"]["cpu_seconds"] == 360_000
    assert body["member_limits"] == {"cpu_seconds": 2, "predicted_rows": 50}
    assert body["member_usage"] == {"cpu_seconds": 4.0, "predicted_rows": 7}
    assert api_as("alice").get("/api/v1/usage/").json()["member_limits"] == {}
