"""Search and filters of the dataset, model and job lists (mlcore/views/listing.py, selectors)."""

import re

import pytest
from django_tenants.utils import tenant_context

from mlcore.models import Dataset, Job, MLModel
from mlcore.services.sharing import object_share

pytestmark = pytest.mark.django_db


def _dataset(name, owner, description=""):
    return Dataset.objects.create(name=name, description=description, owner=owner, original_filename=f"{name}.csv",
                                  format="csv", size_bytes=10, sha256="0" * 64, rows=1, column_count=1)


def _names(html: bytes, testid: str) -> list[str]:
    rows = re.findall(rf'<tr data-testid="{testid}">\s*<td><a [^>]*>([^<]+)</a>', html.decode())
    return [r.strip() for r in rows]


@pytest.fixture
def acme_data(acme, alice, bob, dana):
    """Alice's private and shared datasets and models, Bob's own, Dana's; jobs of Alice and Bob."""
    with tenant_context(acme):
        _dataset("Payroll secret", alice, "salaries")
        shared = _dataset("Secret santa", alice)
        object_share(tenant=acme, obj=shared, permission="view", email=bob.email)
        _dataset("Churn", bob, "the secret sauce")
        _dataset("Leads", bob)
        _dataset("Dana's secret", dana)
        MLModel.objects.create(name="Secret scorer", owner=alice, task="classification")
        MLModel.objects.create(name="Secret pricing", owner=bob, task="regression")
        MLModel.objects.create(name="Churn model", owner=bob, task="classification")
        for user, status, kind in [(alice, "failed", "training"), (bob, "failed", "training"),
                                   (bob, "succeeded", "training"), (bob, "failed", "prediction")]:
            Job.objects.create(created_by=user, status=status, kind=kind, params={"model_name": f"{user.email}"})


def test_bob_searches_datasets_by_name_or_description(page_as, acme_data):
    response = page_as("bob").get("/datasets/?search=secret")
    assert response.status_code == 200
    assert sorted(_names(response.content, "dataset-row")) == ["Churn", "Secret santa"]


def test_a_search_never_lists_a_dataset_the_member_may_not_see(page_as, acme_data):
    """Alice's private "Payroll secret" and Dana's dataset match the search; Bob must not see them."""
    html = page_as("bob").get("/datasets/?search=secret").content
    assert b"Payroll secret" not in html and b"Dana&#x27;s secret" not in html
    assert page_as("bob").get("/datasets/?search=salaries").content.count(b'data-testid="dataset-row"') == 0


def test_the_admin_sees_every_match_and_filters_by_owner(page_as, acme_data):
    alice = page_as("alice")
    assert sorted(_names(alice.get("/datasets/?search=secret").content, "dataset-row")) == [
        "Churn", "Dana&#x27;s secret", "Payroll secret", "Secret santa"]
    assert sorted(_names(alice.get("/datasets/?owner=me").content, "dataset-row")) == [
        "Payroll secret", "Secret santa"]
    assert sorted(_names(page_as("bob").get("/datasets/?owner=others").content, "dataset-row")) == [
        "Secret santa"]


def test_the_filters_stay_in_the_form_and_in_the_page_links(page_as, acme, bob):
    with tenant_context(acme):
        for i in range(30):
            _dataset(f"Batch {i:02}", bob)
    html = page_as("bob").get("/datasets/?search=batch&owner=me").content.decode()
    assert html.count('data-testid="dataset-row"') == 25
    assert 'value="batch"' in html and '<option value="me" selected>' in html
    assert 'href="?search=batch&amp;owner=me&amp;page=2"' in html
    second = page_as("bob").get("/datasets/?search=batch&owner=me&page=2").content.decode()
    assert second.count('data-testid="dataset-row"') == 5


def test_every_filter_has_a_visible_label(page_as, acme_data):
    for path, fields in [("/datasets/", ["search", "owner"]),
                         ("/models/", ["search", "owner", "task", "in_production"]),
                         ("/jobs/", ["status", "kind", "who"])]:
        html = page_as("alice").get(path).content.decode()
        form = re.search(r'<form method="get" class="list-filters".*?</form>', html, re.S).group(0)
        for field in fields:
            assert f'<label for="id_{field}">' in form, (path, field)
        assert "placeholder" not in form


def test_a_filter_value_that_is_not_offered_is_a_400_with_the_list(page_as, acme_data):
    response = page_as("alice").get("/jobs/?status=exploded")
    assert response.status_code == 400
    assert b'class="field-error"' in response.content
    assert response.content.count(b'data-testid="job-row"') == 4


def test_models_filter_by_search_task_and_production(page_as, acme, acme_data):
    bob = page_as("bob")
    assert _names(bob.get("/models/?search=secret").content, "model-row") == ["Secret pricing"]
    assert _names(bob.get("/models/?task=classification").content, "model-row") == ["Churn model"]
    assert _names(bob.get("/models/?in_production=yes").content, "model-row") == []
    assert sorted(_names(page_as("alice").get("/models/?search=secret").content, "model-row")) == [
        "Secret pricing", "Secret scorer"]
    assert b"No models match these filters" in bob.get("/models/?in_production=yes").content


def test_jobs_filter_by_status_kind_and_who(page_as, acme_data):
    alice = page_as("alice")
    assert alice.get("/jobs/?status=failed").content.count(b'data-testid="job-row"') == 3
    assert alice.get("/jobs/?status=failed&kind=training").content.count(b'data-testid="job-row"') == 2
    assert alice.get("/jobs/?who=alice").content.count(b'data-testid="job-row"') == 1


def test_bob_filtering_jobs_by_who_never_sees_alices(page_as, acme_data):
    bob = page_as("bob")
    assert bob.get("/jobs/?who=alice").content.count(b'data-testid="job-row"') == 0
    assert bob.get("/jobs/?status=failed").content.count(b'data-testid="job-row"') == 2


@pytest.mark.parametrize("name,path,status", [("vera", "/jobs/?status=failed", 403),
                                              ("audrey", "/datasets/?search=secret", 403),
                                              ("audrey", "/models/?search=secret", 403)])
def test_those_without_the_list_get_403_whatever_the_filter(page_as, acme_data, name, path, status):
    assert page_as(name).get(path).status_code == status


def test_charlie_of_globex_finds_none_of_acmes_data(page_as, acme_data):
    html = page_as("charlie").get("/datasets/?search=secret").content
    assert html.count(b'data-testid="dataset-row"') == 0
