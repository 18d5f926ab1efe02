"""The dataset's relationships page: only for those who may open the dataset; clear refusals."""

from __future__ import annotations

import html

import pytest

from tests.mlcore.conftest import churn_csv, upload_dataset

pytestmark = pytest.mark.django_db


def test_bob_compares_the_columns_of_his_data_with_its_target(page_as, churn):
    bob = page_as("bob")
    url = f"/datasets/{churn['id']}/relationships/"
    page = bob.get(url).content.decode()
    assert 'data-testid="correlation-matrix"' in page
    assert "tenure" in page and "monthly" in page
    assert "Computed on all 300 rows." in page
    by_class = bob.get(f"{url}?target=churned").content.decode()
    assert 'data-testid="class-means"' in by_class
    by_number = bob.get(f"{url}?target=monthly").content.decode()
    assert 'data-testid="target-correlations"' in by_number and 'data-testid="target-chart"' in by_number


def test_a_column_that_cannot_be_a_target_is_refused_by_name(page_as, churn):
    response = page_as("bob").get(f"/datasets/{churn['id']}/relationships/?target=nope", follow=True)
    assert "'nope' is not a number, category or yes/no column of churn" in html.unescape(response.content.decode())


def test_others_cannot_read_relationships_of_data_they_may_not_open(page_as, api_as, churn):
    private = upload_dataset(api_as("alice"), churn_csv(rows=50, seed=2), filename="alices.csv")
    assert page_as("bob").get(f"/datasets/{private['id']}/relationships/").status_code == 404
    assert page_as("charlie").get(f"/datasets/{churn['id']}/relationships/").status_code == 404
