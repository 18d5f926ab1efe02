"""Explaining online predictions (`explain: true` and the try-it form): mlcore/ml/explain.py."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest

from mlcore import serving
from mlcore.ml import explain as ml_explain
from mlcore.models import ModelVersion
from tests.mlcore.conftest import churn_csv
from tests.mlcore.test_prediction_apis import ROWS, sklearn_pipeline, train_model

pytestmark = pytest.mark.django_db

FEATURES = {"tenure", "monthly", "plan", "autopay"}


@pytest.fixture(autouse=True)
def _fresh_serving_cache():
    serving.forget_all()
    yield
    serving.forget_all()


def explain(client, model_id, rows=ROWS, **extra):
    response = client.post(f"/api/v1/models/{model_id}/predict/", {"rows": rows, "explain": True, **extra},
                           format="json")
    assert response.status_code == 200, response.content
    return response.json()


def canonical(rows) -> pd.DataFrame:
    """Rows as the model reads them (yes/no was profiled as a boolean: true/false)."""
    frame = pd.DataFrame(rows).astype({"monthly": float})
    for name in {"autopay", "churned"} & set(frame.columns):
        frame[name] = frame[name].replace({"yes": "true", "no": "false"})
    return frame


def training_frame(target: str) -> pd.DataFrame:
    frame = pd.read_csv(io.BytesIO(churn_csv()))
    return canonical(frame.to_dict("records")).drop(columns=[target])


def assert_additive(explanation) -> None:
    total = sum(c["contribution"] for c in explanation["contributions"])
    assert math.isclose(explanation["baseline"] + total, explanation["output"], rel_tol=0, abs_tol=1e-6)
    assert {c["feature"] for c in explanation["contributions"]} == FEATURES - {explanation.get("_target")}
    sizes = [abs(c["contribution"]) for c in explanation["contributions"]]
    assert sizes == sorted(sizes, reverse=True)


# --- linear models: exact --------------------------------------------------------------------
def test_a_logistic_regression_explanation_sums_to_the_logit_minus_the_training_mean_baseline(api_as, acme, churn):
    trained = train_model(api_as("bob"), churn["id"])
    body = explain(api_as("bob"), trained["model"])

    pipeline = sklearn_pipeline(acme, trained["model_version"])
    logits = pipeline.decision_function(canonical(ROWS))  # log-odds of classes[1] ("true")
    model = pipeline.steps[-1][1]
    means = pipeline[:-1].transform(training_frame("churned")).mean(axis=0)
    logit_at_mean = float(model.coef_[0] @ means + model.intercept_[0])
    for explanation, prediction, logit in zip(body["explanations"], body["predictions"], logits, strict=True):
        sign = 1 if str(prediction).lower() == "true" else -1
        assert (explanation["method"], explanation["scale"]) == ("linear", "log-odds")
        assert str(explanation["class"]) == str(prediction)
        assert explanation["output"] == pytest.approx(sign * logit, abs=1e-6)
        assert explanation["baseline"] == pytest.approx(sign * logit_at_mean, abs=1e-6)
        total = sum(c["contribution"] for c in explanation["contributions"])
        assert total == pytest.approx(sign * logit - sign * logit_at_mean, abs=1e-6)
        assert {c["feature"] for c in explanation["contributions"]} == FEATURES
    shown = {c["feature"]: c["value"] for c in body["explanations"][2]["contributions"]}
    assert shown == {"tenure": 10.0, "monthly": None, "plan": "plus", "autopay": "true"}


def test_a_three_class_model_explains_the_predicted_classs_score(api_as, acme, churn):
    trained = train_model(api_as("bob"), churn["id"], name="Plan", target="plan")
    rows = [{k: v for k, v in row.items() if k != "plan"} | {"churned": "yes"} for row in ROWS]
    body = explain(api_as("bob"), trained["model"], rows=rows)

    pipeline = sklearn_pipeline(acme, trained["model_version"])
    frame = canonical([{**r, "plan": "x"} for r in rows]).drop(columns=["plan"])
    frame["churned"] = "true"
    scores = pipeline.decision_function(frame[pipeline.feature_names_in_])
    classes = [str(c) for c in pipeline.classes_]
    for explanation, prediction, score in zip(body["explanations"], body["predictions"], scores, strict=True):
        k = classes.index(str(prediction))
        assert explanation["class"] == prediction
        assert explanation["output"] == pytest.approx(score[k], abs=1e-6)
        total = sum(c["contribution"] for c in explanation["contributions"])
        assert explanation["baseline"] + total == pytest.approx(score[k], abs=1e-6)
        assert {c["feature"] for c in explanation["contributions"]} == {"tenure", "monthly", "autopay", "churned"}


def test_a_regression_explanation_sums_to_the_value_minus_the_training_mean_baseline(api_as, acme, churn):
    # A category before a number: the served (ONNX) copy takes the numbers first, scikit-learn not.
    trained = train_model(api_as("bob"), churn["id"], name="Monthly", target="monthly", algorithm="ridge",
                          task="regression", features=["plan", "tenure", "autopay", "churned"])
    rows = [{"tenure": 7, "plan": "pro", "autopay": "yes", "churned": "no"},
            {"tenure": 70, "plan": "basic", "autopay": "no", "churned": "yes"}]
    body = explain(api_as("bob"), trained["model"], rows=rows)

    pipeline = sklearn_pipeline(acme, trained["model_version"])
    means = pipeline[:-1].transform(training_frame("monthly")[pipeline.feature_names_in_]).mean(axis=0)
    value_at_mean = float(pipeline.steps[-1][1].predict(means.reshape(1, -1))[0])
    for explanation, prediction in zip(body["explanations"], body["predictions"], strict=True):
        assert (explanation["method"], explanation["scale"], explanation["class"]) == ("linear", "value", None)
        assert explanation["output"] == pytest.approx(prediction, abs=1e-6)
        assert explanation["baseline"] == pytest.approx(value_at_mean, abs=1e-6)
        total = sum(c["contribution"] for c in explanation["contributions"])
        assert explanation["baseline"] + total == pytest.approx(prediction, abs=1e-6)


# --- trees -----------------------------------------------------------------------------------
def test_a_forests_contributions_sum_to_its_probability_minus_the_baseline(api_as, churn):
    trained = train_model(api_as("bob"), churn["id"], algorithm="random_forest", params={"n_estimators": 10})
    body = explain(api_as("bob"), trained["model"])
    for explanation, prediction, proba in zip(body["explanations"], body["predictions"], body["probabilities"],
                                              strict=True):
        assert (explanation["method"], explanation["scale"]) == ("tree_shap", "probability")
        total = sum(c["contribution"] for c in explanation["contributions"])
        assert explanation["baseline"] + total == pytest.approx(explanation["output"], abs=1e-6)
        assert explanation["output"] == pytest.approx(proba[str(prediction).lower()], abs=1e-4)
        assert 0 < explanation["baseline"] < 1


def test_large_trees_are_explained_by_the_saabas_method_and_still_add_up(api_as, churn, monkeypatch):
    monkeypatch.setattr(ml_explain, "EXACT_BUDGET", 0)  # as if the trees were too large for exact values
    trained = train_model(api_as("bob"), churn["id"], name="Monthly", target="monthly",
                          algorithm="random_forest", task="regression", params={"n_estimators": 10})
    rows = [{"tenure": 7, "plan": "pro", "autopay": "yes", "churned": "no"}]
    body = explain(api_as("bob"), trained["model"], rows=rows)
    explanation = body["explanations"][0]
    assert (explanation["method"], explanation["scale"]) == ("saabas", "value")
    total = sum(c["contribution"] for c in explanation["contributions"])
    assert explanation["baseline"] + total == pytest.approx(explanation["output"], abs=1e-6)
    assert explanation["output"] == pytest.approx(body["predictions"][0], rel=1e-5)  # served by ONNX (float32)


def test_gradient_boosting_is_explained_in_log_odds_of_the_predicted_class(api_as, churn):
    trained = train_model(api_as("bob"), churn["id"], algorithm="hist_gradient_boosting",
                          params={"max_iter": 20})
    body = explain(api_as("bob"), trained["model"])
    for explanation, prediction, proba in zip(body["explanations"], body["predictions"], body["probabilities"],
                                              strict=True):
        assert (explanation["method"], explanation["scale"]) == ("tree_shap", "log-odds")
        total = sum(c["contribution"] for c in explanation["contributions"])
        assert explanation["baseline"] + total == pytest.approx(explanation["output"], abs=1e-6)
        p = proba[str(prediction).lower()]
        assert explanation["output"] == pytest.approx(math.log(p / (1 - p)), abs=1e-3)


# --- input, versions, rights -----------------------------------------------------------------
def test_explain_must_be_a_boolean(api_as, churn):
    trained = train_model(api_as("bob"), churn["id"])
    url = f"/api/v1/models/{trained['model']}/predict/"
    for value in ("yes", 1, None, [True]):
        response = api_as("bob").post(url, {"rows": ROWS, "explain": value}, format="json")
        assert response.status_code == 400, value
        assert response["Content-Type"].startswith("application/problem+json")
        assert response.json()["errors"] == [{"field": "explain", "message": "A boolean (true or false) is required."}]
    plain = api_as("bob").post(url, {"rows": ROWS, "explain": False}, format="json").json()
    assert "explanations" not in plain
    too_many = api_as("bob").post(url, {"rows": ROWS * 34, "explain": True}, format="json")
    assert too_many.status_code == 413
    assert too_many.json()["errors"][0]["field"] == "rows"


def test_a_linear_version_trained_before_means_were_kept_cannot_be_explained(api_as, churn):
    trained = train_model(api_as("bob"), churn["id"])
    ModelVersion.objects.filter(pk=trained["model_version"]).update(prepared_means=[])
    response = api_as("bob").post(f"/api/v1/models/{trained['model']}/predict/", {"rows": ROWS, "explain": True},
                                  format="json")
    assert response.status_code == 422
    assert "trained before explanations" in response.json()["detail"]
    assert api_as("bob").post(f"/api/v1/models/{trained['model']}/predict/", {"rows": ROWS},
                              format="json").status_code == 200


def test_charlie_cannot_get_an_explanation_of_acmes_model(api_as, world, churn):
    from tests import factories

    trained = train_model(api_as("bob"), churn["id"])
    url, body = f"/api/v1/models/{trained['model']}/predict/", {"rows": ROWS, "explain": True}
    # A session bound to acme (only the membership check stands in the way), his own globex
    # session and token sent to acme's host.
    bound = factories.logged_in_client(world.charlie, world.acme)
    session = factories.logged_in_client(world.charlie, world.globex)
    session.defaults["HTTP_HOST"] = factories.host("acme")
    token = factories.token_client(world.charlie, world.globex, host_slug="acme")
    for response in (bound.post(url, body, content_type="application/json"),
                     session.post(url, body, content_type="application/json"),
                     token.post(url, body, format="json")):
        assert response.status_code == 404, response.content
        assert b"explanations" not in response.content
    assert api_as("charlie").post(url, body, format="json").status_code == 404


def test_vera_may_not_explain_and_a_read_token_may(api_as, churn):
    trained = train_model(api_as("bob"), churn["id"])
    url = f"/api/v1/models/{trained['model']}/predict/"
    assert api_as("vera").post(url, {"rows": ROWS, "explain": True}, format="json").status_code == 403
    assert api_as("bob", scope="read").post(url, {"rows": ROWS, "explain": True}, format="json").status_code == 200


def test_a_warm_explanation_runs_no_sql_statement(api_as, churn, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.PORTAL_TENANT_CACHE_SECONDS = 30
    trained = train_model(api_as("bob"), churn["id"], algorithm="random_forest", params={"n_estimators": 10})
    bob = api_as("bob")
    explain(bob, trained["model"])
    with CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            explain(bob, trained["model"])
    assert "\n".join(q["sql"] for q in queries.captured_queries) == ""


# --- the try-it form -------------------------------------------------------------------------
TRY_ROW = {"f_tenure": "2", "f_monthly": "99", "f_plan": "basic", "f_autopay": "no"}


def test_try_it_shows_each_features_contribution_as_a_chart_and_a_table(page_as, api_as, churn):
    trained = train_model(api_as("bob"), churn["id"])
    page = page_as("bob").post(f"/model-versions/{trained['model_version']}/try/", TRY_ROW).content.decode()
    assert 'data-testid="explain-chart"' in page and 'role="img"' in page
    table = page[page.index('data-testid="explain-table"'):]
    assert all(f"<th scope=\"row\">{name}</th>" in table for name in FEATURES)
    api = explain(api_as("bob"), trained["model"], rows=[{"tenure": 2, "monthly": 99, "plan": "basic",
                                                          "autopay": "no"}])["explanations"][0]
    top = api["contributions"][0]
    assert f'<th scope="row">{top["feature"]}</th>' in table.split("</tr>")[1]
    assert "Exact for a linear model" in page


def test_try_it_still_predicts_when_the_version_cannot_be_explained(page_as, api_as, churn):
    trained = train_model(api_as("bob"), churn["id"])
    ModelVersion.objects.filter(pk=trained["model_version"]).update(prepared_means=[])
    response = page_as("bob").post(f"/model-versions/{trained['model_version']}/try/", TRY_ROW)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="try-prediction"' in page and 'data-testid="explain-chart"' not in page
    assert "trained before explanations were recorded" in page


def test_the_explainer_is_kept_with_the_cached_predictor(api_as, acme, churn):
    trained = train_model(api_as("bob"), churn["id"], algorithm="random_forest", params={"n_estimators": 10})
    explain(api_as("bob"), trained["model"])
    cached = serving.predictor(acme, trained["model_version"])
    first = cached.explainer()
    explain(api_as("bob"), trained["model"])
    assert serving.predictor(acme, trained["model_version"]).explainer() is first
    assert np.isfinite(first.shap.expected_value).all()
