"""Pages of model searches (mlcore/views/searches.py): the form on a dataset, the leaderboard."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from mlcore.models import Job
from tests.mlcore.conftest import run_jobs

pytestmark = pytest.mark.django_db


def form(**extra) -> dict:
    return {"target": "churned", "metric": "", "budget_seconds": "120", "budget_cpu_seconds": "60",
            "model_name": "Churn search", **extra}


def test_bob_starts_a_search_from_his_dataset_and_watches_the_leaderboard(page_as, churn, acme):
    bob = page_as("bob")
    dataset_page = bob.get(f"/datasets/{churn['id']}/").content.decode()
    assert f'href="/datasets/{churn["id"]}/search/"' in dataset_page
    page = bob.get(f"/datasets/{churn['id']}/search/")
    assert page.status_code == 200 and "Find the best model" in page.content.decode()

    response = bob.post(f"/datasets/{churn['id']}/search/", form(algorithms=["logistic_regression", "random_forest"]))
    assert response.status_code == 302
    with tenant_context(acme):
        search = Job.objects.get(kind="search")
    assert response["Location"] == f"/searches/{search.id}/"
    assert search.params["algorithms"] == ["logistic_regression", "random_forest"]
    waiting = bob.get(f"/searches/{search.id}/").content.decode()
    assert "No trial has finished yet." in waiting and f'hx-get="/searches/{search.id}/board/"' in waiting

    run_jobs()
    board = bob.get(f"/searches/{search.id}/board/").content.decode()
    with tenant_context(acme):
        search.refresh_from_db()
        best = search.result["best_trial"]
        version_id = search.result["model_version"]
    assert board.count('data-testid="trial"') == search.result["trials"]
    assert f'data-number="{best}" class="best" aria-current="true" data-best="true"' in board
    assert f'href="/model-versions/{version_id}/"' in board
    assert "hx-get" not in board  # finished: no more polling
    assert f'href="/searches/{search.id}/"' in bob.get(f"/jobs/{search.id}/").content.decode()


def test_a_budget_out_of_range_and_a_metric_for_the_wrong_task_are_shown_on_the_form(page_as, churn, acme):
    bob = page_as("bob")
    too_small = bob.post(f"/datasets/{churn['id']}/search/", form(budget_seconds="1"))
    assert too_small.status_code == 400 and 'data-testid="error-budget_seconds"' in too_small.content.decode()
    wrong = bob.post(f"/datasets/{churn['id']}/search/", form(metric="rmse"))
    assert wrong.status_code == 400
    assert "The metric for classification must be one of" in wrong.content.decode()
    with tenant_context(acme):
        assert not Job.objects.exists()


def test_cancelling_from_the_page_keeps_the_finished_trials(page_as, churn, acme):
    from tests.mlcore.test_searches import one_turn

    bob = page_as("bob")
    bob.post(f"/datasets/{churn['id']}/search/", form())
    with tenant_context(acme):
        search = Job.objects.get(kind="search")
    one_turn()
    response = bob.post(f"/searches/{search.id}/cancel/", follow=True)
    html = response.content.decode()
    assert "The search was cancelled; its finished trials stay below." in html
    assert html.count('data-testid="trial"') == 1 and 'data-status="cancelled"' in html


def test_only_the_searchs_owner_and_admins_open_it(page_as, churn, acme):
    page_as("bob").post(f"/datasets/{churn['id']}/search/", form())
    with tenant_context(acme):
        search = Job.objects.get(kind="search")
    assert page_as("alice").get(f"/searches/{search.id}/").status_code == 200
    assert page_as("dana").get(f"/searches/{search.id}/").status_code == 404
    assert page_as("vera").get(f"/searches/{search.id}/").status_code == 403
    assert page_as("charlie").get(f"/searches/{search.id}/").status_code == 404
    assert page_as("charlie").post(f"/searches/{search.id}/cancel/").status_code == 404
    with tenant_context(acme):
        assert Job.objects.get(pk=search.id).status == "queued"
