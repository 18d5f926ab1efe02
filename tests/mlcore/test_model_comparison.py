"""Comparing versions of a model side by side, and promoting one through a confirmation step."""

from __future__ import annotations

import re

import pytest

from mlcore.models import MLModel, ModelVersion
from tests.mlcore.conftest import run_jobs
from tests.mlcore.test_model_pages import train_via_page

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_versions(page_as, churn):
    """Churn v1 learns from every column (in production); v2 from autopay alone: a worse model."""
    bob = page_as("bob")
    train_via_page(bob, churn["id"])
    run_jobs()
    train_via_page(bob, churn["id"], features=["autopay"])
    run_jobs()
    model = MLModel.objects.get(name="Churn")
    v1, v2 = model.versions.order_by("version")
    assert model.production_version_id == v1.id
    return model, v1, v2


def test_the_model_page_leads_to_a_side_by_side_comparison(page_as, two_versions):
    model, v1, v2 = two_versions
    bob = page_as("bob")
    detail = bob.get(f"/models/{model.id}/").content.decode()
    assert f'action="/models/{model.id}/compare/"' in detail
    assert f'name="versions" value="{v1.id}" form="compare-form"' in detail
    page = bob.get(f"/models/{model.id}/compare/", {"versions": [v1.id, v2.id]})
    html = page.content.decode()
    assert page.status_code == 200
    table = re.search(r'data-testid="comparison-table".*?</table>', html, re.S).group(0)
    for label in ["ROC AUC", "Accuracy", "Logistic regression", "Regularisation (C)", "Training dataset",
                  "(300 rows)", "Features", "autopay, monthly, plan, tenure", "bob@acme.test"]:
        assert label in table, label
    # The features differ, the algorithm does not; v1's better ROC AUC is the one in bold.
    assert re.search(r'<tr data-testid="compare-row" class="differs">\s*<th scope="row">Features', table)
    assert re.search(r'<tr data-testid="compare-row">\s*<th scope="row">Algorithm', table)
    roc = re.search(r'<th scope="row">ROC AUC.*?</tr>', table, re.S).group(0)
    assert re.search(r'class="best" data-testid="best">\s*[\d.]+\s*</td>\s*<td>', roc)


def test_comparing_fewer_than_two_versions_says_so_in_place(page_as, two_versions):
    model, v1, _ = two_versions
    page = page_as("bob").get(f"/models/{model.id}/compare/", {"versions": [v1.id, 999_999, "x"]})
    assert page.status_code == 400
    assert b"Choose at least two versions" in page.content
    assert b'data-testid="comparison-table"' not in page.content


def test_only_those_who_may_see_the_model_compare_its_versions(page_as, two_versions):
    model, v1, v2 = two_versions
    query = {"versions": [v1.id, v2.id]}
    assert page_as("vera").get(f"/models/{model.id}/compare/", query).status_code == 404  # not shared
    assert page_as("charlie").get(f"/models/{model.id}/compare/", query).status_code == 404
    assert page_as("audrey").get(f"/models/{model.id}/compare/", query).status_code == 403


def test_promote_shows_the_candidate_beside_production_and_warns_that_it_is_worse(page_as, two_versions):
    model, v1, v2 = two_versions
    bob = page_as("bob")
    version_page = bob.get(f"/model-versions/{v2.id}/").content.decode()
    assert f'href="/model-versions/{v2.id}/promote/" data-testid="promote-link"' in version_page
    page = bob.get(f"/model-versions/{v2.id}/promote/")
    html = page.content.decode()
    assert page.status_code == 200
    warning = re.search(r'data-testid="promote-warning">(.*?)</div>', html, re.S).group(1)
    # Learning from autopay alone loses on every metric.
    assert "v2 is worse than the production version v1 on every metric" in re.sub(r"<[^>]+>", "", warning)
    assert 'class="message message-error promote-verdict" role="alert" data-testid="promote-warning"' in html
    assert "Production v1" in html and "Candidate v2" in html
    assert 'class="worse" data-testid="promote-metric-roc_auc"' in html
    assert "Promote anyway" in html
    model.refresh_from_db()
    assert model.production_version_id == v1.id  # looking changes nothing


def test_a_promotion_happens_only_once_confirmed(page_as, two_versions):
    model, v1, v2 = two_versions
    bob = page_as("bob")
    unconfirmed = bob.post(f"/model-versions/{v2.id}/promote/")
    assert unconfirmed.status_code == 302 and unconfirmed["Location"] == f"/model-versions/{v2.id}/promote/"
    model.refresh_from_db()
    assert model.production_version_id == v1.id
    confirmed = bob.post(f"/model-versions/{v2.id}/promote/", {"confirm": "yes"})
    assert confirmed.status_code == 302 and confirmed["Location"] == f"/models/{model.id}/"
    model.refresh_from_db()
    assert model.production_version_id == v2.id
    # Going back to v1 is an improvement, and the page says so without a warning.
    back = bob.get(f"/model-versions/{v1.id}/promote/").content.decode()
    assert 'data-testid="promote-better"' in back and 'data-testid="promote-warning"' not in back


def test_a_candidate_worse_only_on_the_main_metric_is_still_flagged(page_as, two_versions):
    model, v1, v2 = two_versions
    mixed = {**v1.metrics, "roc_auc": v1.metrics["roc_auc"] - 0.05, "accuracy": v1.metrics["accuracy"] + 0.01}
    ModelVersion.objects.filter(pk=v2.id).update(metrics=mixed)
    html = page_as("bob").get(f"/model-versions/{v2.id}/promote/").content.decode()
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))
    assert ("v2 is worse than the production version v1 on ROC AUC, the main metric for classification, "
            "though better on Accuracy.") in text
    assert 'class="message message-warning promote-verdict" role="alert" data-testid="promote-warning"' in html
    assert "Promote anyway" in html


def test_vera_cannot_reach_the_promotion_step(page_as, api_as, two_versions):
    model, v1, v2 = two_versions
    api_as("bob").post(f"/api/v1/models/{model.id}/share/", {"email": "vera@acme.test", "permission": "view"},
                       format="json")
    vera = page_as("vera")
    assert vera.get(f"/models/{model.id}/compare/", {"versions": [v1.id, v2.id]}).status_code == 200
    assert vera.get(f"/model-versions/{v2.id}/promote/").status_code == 403
    assert vera.post(f"/model-versions/{v2.id}/promote/", {"confirm": "yes"}).status_code == 403
    model.refresh_from_db()
    assert model.production_version_id == v1.id
