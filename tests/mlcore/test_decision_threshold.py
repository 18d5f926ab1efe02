"""A two-class version's decision threshold: chosen on its page from the precision-recall table,
used by online and batch predictions, refused where it has no meaning."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from tenants.models import AuditEvent
from tests.mlcore.conftest import churn_csv, run_jobs, upload_dataset
from tests.mlcore.test_prediction_apis import body_of, train_model

pytestmark = pytest.mark.django_db

ROWS = [{"tenure": t, "monthly": m, "plan": p, "autopay": a}
        for t, m, p, a in [(2, 95.0, "basic", "no"), (30, 60.0, "plus", "yes"), (70, 20.0, "pro", "yes"),
                           (12, 70.0, "basic", "yes"), (5, 80.0, "plus", "no"), (50, 40.0, "pro", "no")]]


def predict(client, model_id: int) -> dict:
    response = client.post(f"/api/v1/models/{model_id}/predict/", {"rows": ROWS}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def expected_at(result: dict, threshold: float) -> list:
    """What "positive when P(positive) >= threshold" gives from the returned probabilities."""
    negative, positive = sorted(result["probabilities"][0])
    return [positive if p[positive] >= threshold else negative for p in result["probabilities"]]


def test_bob_sets_a_threshold_on_the_page_and_predictions_follow_it(api_as, page_as, churn):
    bob_api, bob = api_as("bob"), page_as("bob")
    trained = train_model(bob_api, churn["id"])
    version_url = f"/model-versions/{trained['model_version']}/"
    page = bob.get(version_url).content.decode()
    assert 'data-testid="threshold-table"' in page and 'data-testid="pr-chart"' in page
    assert "heat-" in page  # the confusion matrix is shaded

    before = predict(bob_api, trained["model"])
    assert before["predictions"] == expected_at(before, 0.5)  # argmax of two classes
    assert expected_at(before, 0.05) != expected_at(before, 0.95)  # these rows tell the two apart
    for threshold in ("0.05", "0.95"):
        response = bob.post(f"{version_url}threshold/", {"threshold": threshold})
        assert response.status_code == 302
        after = predict(bob_api, trained["model"])
        assert after["probabilities"] == before["probabilities"]  # only the decision moves
        assert after["predictions"] == expected_at(after, float(threshold))
    entry = AuditEvent.objects.filter(action="model.threshold_set").latest("seq")
    assert (entry.details["from"], entry.details["to"]) == (0.05, 0.95)

    # A batch job submitted now scores with 0.95 too: its prediction column agrees with its probabilities.
    job = bob_api.post("/api/v1/prediction-jobs/", {"model": trained["model"], "dataset": churn["id"]},
                       format="json").json()
    run_jobs("prediction")
    out = pd.read_csv(io.BytesIO(body_of(bob_api.get(f"/api/v1/jobs/{job['id']}/result/"))))
    positive = out.columns[-1].removeprefix("proba_")
    negative = out.columns[-2].removeprefix("proba_")
    want = [positive if p >= 0.95 else negative for p in out[f"proba_{positive}"]]
    assert out["prediction"].astype(str).str.lower().tolist() == [str(w).lower() for w in want]

    assert bob.post(f"{version_url}threshold/", {"reset": "1"}).status_code == 302
    assert predict(bob_api, trained["model"])["predictions"] == before["predictions"]


def test_bad_thresholds_and_models_without_one_are_refused_with_a_reason(api_as, page_as, churn):
    bob_api, bob = api_as("bob"), page_as("bob")
    trained = train_model(bob_api, churn["id"])
    url = f"/model-versions/{trained['model_version']}/threshold/"
    for bad in ("abc", "0", "1.5", ""):
        page = bob.post(url, {"threshold": bad}, follow=True).content.decode()
        assert "from 0.01 to 0.99" in page, bad
    amounts = upload_dataset(bob_api, churn_csv(rows=200, seed=3), filename="amounts.csv")
    regression = train_model(bob_api, amounts["id"], name="Monthly", target="monthly", algorithm="ridge")
    page = bob.post(f"/model-versions/{regression['model_version']}/threshold/", {"threshold": "0.5"},
                    follow=True).content.decode()
    assert "Only a model that predicts one of two classes has a decision threshold." in page
    assert 'data-testid="threshold"' not in bob.get(f"/model-versions/{regression['model_version']}/").content.decode()


def test_only_those_who_may_edit_the_model_set_its_threshold(api_as, page_as, churn, acme):
    from mlcore.models import MLModel, ModelVersion
    from mlcore.services.sharing import object_share

    trained = train_model(api_as("bob"), churn["id"])
    object_share(tenant=acme, obj=MLModel.objects.get(pk=trained["model"]), permission="view",
                 email="dana@example.test")
    url = f"/model-versions/{trained['model_version']}/threshold/"
    dana = page_as("dana")
    assert 'data-testid="threshold-save"' not in dana.get(f"/model-versions/{trained['model_version']}/").content.decode()
    assert dana.post(url, {"threshold": "0.2"}).status_code in (403, 404)
    assert page_as("vera").post(url, {"threshold": "0.2"}).status_code in (403, 404)
    assert ModelVersion.objects.get(pk=trained["model_version"]).decision_threshold is None
