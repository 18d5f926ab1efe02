"""Lineage: a dataset's page leads to the versions trained on it and the jobs that scored it, a
version's page back to its data and on to its prediction jobs; each only as far as the reader may see."""

from __future__ import annotations

import pytest

from mlcore.models import ModelVersion
from tests.mlcore.conftest import run_jobs
from tests.mlcore.test_prediction_apis import train_model

pytestmark = pytest.mark.django_db


def lineage_of(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200
    page = response.content.decode()
    start = page.index('data-testid="lineage"')
    return page[start:page.index("</section>", start)]


def score(client, model_id: int, dataset_id: int) -> int:
    response = client.post("/api/v1/prediction-jobs/", {"model": model_id, "dataset": dataset_id}, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


@pytest.fixture
def history(api_as, churn):
    """Bob trains Churn on his data and scores it; Alice trains a model of her own on the same
    data (not shared with Bob) and scores it too."""
    bob, alice = api_as("bob"), api_as("alice")
    bobs = train_model(bob, churn["id"], name="Churn")
    alices = train_model(alice, churn["id"], name="Alice private model")
    jobs = {"bob": score(bob, bobs["model"], churn["id"]), "alice": score(alice, alices["model"], churn["id"])}
    assert run_jobs("prediction") == 2
    return {"dataset": churn["id"], "bob": bobs, "alice": alices, "jobs": jobs}


def test_bob_follows_his_data_to_his_model_and_its_predictions_and_back(page_as, history):
    bob = page_as("bob")
    on_dataset = lineage_of(bob, f"/datasets/{history['dataset']}/")
    assert f'href="/model-versions/{history["bob"]["model_version"]}/"' in on_dataset
    assert f'href="/jobs/{history["jobs"]["bob"]}/"' in on_dataset
    # Alice's model and job are hers: not in Bob's lineage (nor their names).
    assert "Alice private model" not in on_dataset
    assert f'/model-versions/{history["alice"]["model_version"]}/' not in on_dataset
    assert f'href="/jobs/{history["jobs"]["alice"]}/"' not in on_dataset

    on_version = lineage_of(bob, f"/model-versions/{history['bob']['model_version']}/")
    assert f'href="/datasets/{history["dataset"]}/"' in on_version  # back to the data
    trained_by = ModelVersion.objects.get(pk=history["bob"]["model_version"]).job_id
    assert f'href="/jobs/{trained_by}/"' in on_version  # the training job
    assert f'href="/jobs/{history["jobs"]["bob"]}/"' in on_version  # on to the predictions
    assert f'href="/jobs/{history["jobs"]["alice"]}/"' not in on_version


def test_alice_as_admin_sees_every_branch(page_as, history):
    on_dataset = lineage_of(page_as("alice"), f"/datasets/{history['dataset']}/")
    for version in (history["bob"]["model_version"], history["alice"]["model_version"]):
        assert f'href="/model-versions/{version}/"' in on_dataset
    for job in history["jobs"].values():
        assert f'href="/jobs/{job}/"' in on_dataset


def test_a_viewer_sees_no_jobs_section(page_as, history, acme):
    from mlcore.models import Dataset
    from mlcore.services.sharing import object_share

    # Vera can open the dataset only once it is shared with her.
    dataset = Dataset.objects.get(pk=history["dataset"])
    object_share(tenant=acme, obj=dataset, permission="view", email="vera@acme.test")
    on_dataset = lineage_of(page_as("vera"), f"/datasets/{history['dataset']}/")
    assert "/jobs/" not in on_dataset
    assert "Alice private model" not in on_dataset
