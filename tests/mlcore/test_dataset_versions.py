"""Dataset versions: a file uploaded to an existing dataset becomes its next version (the same
upload path, quotas and encryption as a new dataset); models record the version they learnt from
and lineage shows it."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import tenant_context

from mlcore.models import Dataset
from tenants.limits import quotas
from tests.mlcore.conftest import churn_csv
from tests.mlcore.test_prediction_apis import train_model

pytestmark = pytest.mark.django_db


def new_version(client, dataset_id: int, content: bytes, filename: str = "churn-2.csv", **fields):
    return client.post(f"/api/v1/datasets/{dataset_id}/versions/",
                       {"file": SimpleUploadedFile(filename, content), **fields}, format="multipart")


def test_a_new_upload_to_bobs_dataset_is_version_two_with_its_name_and_shares(api_as, acme, churn):
    bob = api_as("bob")
    assert churn["version"] == 1
    shared = bob.post(f"/api/v1/datasets/{churn['id']}/share/", {"email": "vera@acme.test", "permission": "view"},
                      format="json")
    assert shared.status_code == 201
    with tenant_context(acme):
        before = quotas.gauges(acme).storage_bytes

    response = new_version(bob, churn["id"], churn_csv(rows=200, seed=9))

    assert response.status_code == 201, response.content
    second = response.json()
    assert second["version"] == 2 and second["series"] == churn["series"]
    assert second["name"] == churn["name"] and second["id"] != churn["id"]
    assert second["rows"] == 200 and second["owner"] == "bob@acme.test"
    assert [c["name"] for c in second["columns"]] == ["tenure", "monthly", "plan", "autopay", "churned"]
    listed = bob.get(f"/api/v1/datasets/{churn['id']}/versions/").json()
    assert [(v["id"], v["version"]) for v in listed] == [(second["id"], 2), (churn["id"], 1)]
    # Vera was shared the dataset: she sees the new version too.
    assert api_as("vera").get(f"/api/v1/datasets/{second['id']}/").status_code == 200
    with tenant_context(acme):
        assert quotas.gauges(acme).storage_bytes == before + second["size_bytes"]


def test_renaming_one_version_renames_the_dataset(api_as, churn):
    bob = api_as("bob")
    second = new_version(bob, churn["id"], churn_csv(rows=150, seed=2)).json()
    assert bob.patch(f"/api/v1/datasets/{churn['id']}/", {"name": "Customers"}, format="json").status_code == 200
    assert bob.get(f"/api/v1/datasets/{second['id']}/").json()["name"] == "Customers"


def test_a_refused_new_version_leaves_nothing_behind(api_as, acme, churn):
    bob = api_as("bob")
    response = new_version(bob, churn["id"], b"a,b\n1,2,3\n")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    with tenant_context(acme):
        assert Dataset.objects.filter(series=churn["series"]).count() == 1


def test_only_who_may_edit_a_dataset_uploads_a_version_of_it(api_as, churn):
    bob = api_as("bob")
    bob.post(f"/api/v1/datasets/{churn['id']}/share/", {"email": "vera@acme.test", "permission": "view"},
             format="json")
    # Vera may see it but not change it; Charlie (another tenant) may not even see it.
    assert new_version(api_as("vera"), churn["id"], churn_csv(rows=50)).status_code == 403
    assert new_version(api_as("charlie"), churn["id"], churn_csv(rows=50)).status_code == 404
    assert api_as("charlie").get(f"/api/v1/datasets/{churn['id']}/versions/").status_code == 404
    assert len(bob.get(f"/api/v1/datasets/{churn['id']}/versions/").json()) == 1


def test_a_model_records_the_version_it_was_trained_on_and_lineage_shows_it(api_as, page_as, churn):
    bob = api_as("bob")
    second = new_version(bob, churn["id"], churn_csv(rows=250, seed=5)).json()
    trained = train_model(bob, second["id"], name="Churn on v2")

    version = bob.get(f"/api/v1/model-versions/{trained['model_version']}/").json()
    assert version["dataset"] == second["id"] and version["dataset_version"] == 2

    pages = page_as("bob")
    on_version = pages.get(f"/model-versions/{trained['model_version']}/").content.decode()
    assert f'{churn["name"]} (version 2)</a>' in on_version
    on_dataset = pages.get(f"/datasets/{second['id']}/").content.decode()
    assert "trained on version 2" in on_dataset
    assert 'data-testid="dataset-versions"' in on_dataset
    assert f'href="/datasets/{churn["id"]}/">Version 1</a>' in on_dataset


def test_bob_uploads_a_new_version_from_the_dataset_page(page_as, acme, churn):
    bob = page_as("bob")
    page = bob.get(f"/datasets/{churn['id']}/").content.decode()
    assert f'href="/datasets/{churn["id"]}/versions/new/"' in page
    form = bob.get(f"/datasets/{churn['id']}/versions/new/")
    assert form.status_code == 200 and "Upload a new version of" in form.content.decode()

    response = bob.post(f"/datasets/{churn['id']}/versions/new/",
                        {"file": SimpleUploadedFile("more.csv", churn_csv(rows=80, seed=4))})

    assert response.status_code == 302
    with tenant_context(acme):
        created = Dataset.objects.get(series=churn["series"], version=2)
    assert response["Location"] == f"/datasets/{created.id}/"
    refused = bob.post(f"/datasets/{churn['id']}/versions/new/", {})
    assert refused.status_code == 400 and "Choose a file" in refused.content.decode()


def test_deleting_the_latest_version_does_not_free_its_number(api_as, churn):
    bob = api_as("bob")
    second = new_version(bob, churn["id"], churn_csv(rows=60, seed=1)).json()
    assert bob.delete(f"/api/v1/datasets/{second['id']}/").status_code == 204
    third = new_version(bob, churn["id"], churn_csv(rows=70, seed=2)).json()
    assert third["version"] == 3
    assert [v["version"] for v in bob.get(f"/api/v1/datasets/{churn['id']}/versions/").json()] == [3, 1]
