"""Pages of mlcore/views/models.py and jobs.py: train form, registry, version page, job page."""

import re

import pytest

from tests.mlcore.conftest import run_jobs

pytestmark = pytest.mark.django_db


def train_via_page(client, dataset_id, **extra):
    data = {"dataset": dataset_id, "target": "churned", "algorithm": "logistic_regression",
            "features": ["tenure", "monthly", "plan", "autopay"], "evaluation": "holdout",
            "test_size": "0.2", "model_name": "Churn", "param_C": "1.0", "param_max_iter": "1000",
            "param_class_weight": "none", **extra}
    return client.post("/models/train/", data)


def test_the_train_form_lists_the_datasets_columns_and_hyperparameters(page_as, churn):
    page = page_as("bob").get(f"/models/train/?dataset={churn['id']}&algorithm=random_forest")
    html = page.content.decode()
    assert page.status_code == 200
    for column in ["tenure", "monthly", "plan", "autopay", "churned"]:
        assert f'value="{column}"' in html
    assert 'name="param_n_estimators"' in html and 'max="1000"' in html
    assert "Automatic (classification)" in html


def test_the_train_form_leaves_an_identifier_column_unticked(page_as, api_as):
    from tests.mlcore.conftest import churn_csv, upload_dataset

    lines = churn_csv().decode().splitlines()
    with_ids = "\n".join([f"customer,{lines[0]}"] + [f"C{i:05d},{line}" for i, line in enumerate(lines[1:])])
    dataset = upload_dataset(api_as("bob"), (with_ids + "\n").encode(), filename="ids.csv")
    html = page_as("bob").get(f"/models/train/?dataset={dataset['id']}").content.decode()
    assert re.search(r'value="customer"\s*>', html)  # offered, not checked
    assert "looks like an identifier" in html
    for column in ["tenure", "monthly", "plan", "autopay"]:
        assert f'value="{column}" checked' in html


def test_bob_starts_training_from_the_page_and_follows_the_job(page_as, churn):
    bob = page_as("bob")
    response = train_via_page(bob, churn["id"])
    assert response.status_code == 302
    job_url = response["Location"]
    assert re.match(r"^/jobs/\d+/$", job_url)
    page = bob.get(job_url)
    assert b'data-testid="job-status"' in page.content and b"hx-trigger=\"every 1s\"" in page.content
    run_jobs()
    status = bob.get(job_url + "status/")
    assert b'data-status="succeeded"' in status.content
    assert b"hx-trigger" not in status.content  # polling stops when the job is done
    version_url = re.search(rb'href="(/model-versions/\d+/)"', status.content).group(1).decode()
    version = bob.get(version_url).content.decode()
    for testid in ["roc-chart", "confusion-matrix", "importance-chart", "model-card"]:
        assert f'data-testid="{testid}"' in version
    assert "<svg" in version and "scikit-learn" in version
    assert "ROC AUC" in version and "Logistic regression" in version and "roc_auc" not in version


def test_a_refused_training_shows_the_reason_on_the_form(page_as, churn):
    response = train_via_page(page_as("bob"), churn["id"], target="nope")
    assert response.status_code == 422
    assert b"no column named" in response.content


def test_the_regression_version_page_has_a_predicted_vs_actual_plot(page_as, api_as, churn):
    bob = page_as("bob")
    train_via_page(bob, churn["id"], target="monthly", algorithm="ridge", features=["tenure", "plan"],
                   param_alpha="1.0", model_name="Spend")
    run_jobs()
    version = api_as("bob").get("/api/v1/models/").json()["results"][0]["versions"][0]
    page = bob.get(f"/model-versions/{version['id']}/").content.decode()
    assert 'data-testid="pva-chart"' in page
    assert "R²" in page and "Ridge regression" in page  # display names, not stored keys


@pytest.mark.parametrize("path", ["/models/", "/jobs/", "/models/train/"])
def test_auditors_see_none_of_the_model_pages(page_as, path):
    assert page_as("audrey").get(path).status_code == 403


def test_vera_sees_models_but_not_jobs_or_training(page_as):
    vera = page_as("vera")
    assert vera.get("/models/").status_code == 200
    assert vera.get("/jobs/").status_code == 403
    assert vera.get("/models/train/").status_code == 403


def _options(html: str, select_id: str) -> list[str]:
    select = re.search(rf'<select[^>]*id="{select_id}".*?</select>', html, re.S).group(0)
    return re.findall(r'<option value="([^"]*)"', select)


def test_a_category_target_offers_only_the_algorithms_that_predict_classes(page_as, churn):
    html = page_as("bob").get(f"/models/train/?dataset={churn['id']}&target=churned").content.decode()
    assert _options(html, "id_algorithm") == ["logistic_regression", "random_forest", "hist_gradient_boosting"]
    assert _options(html, "id_task") == ["", "classification"]  # no regression for words


def test_a_number_target_offers_the_algorithms_of_the_task_chosen(page_as, churn):
    bob = page_as("bob")
    html = bob.get(f"/models/train/?dataset={churn['id']}&target=monthly").content.decode()
    assert _options(html, "id_algorithm") == ["linear_regression", "ridge", "random_forest", "hist_gradient_boosting"]
    assert _options(html, "id_task") == ["", "classification", "regression"]
    # Switching the task to classes swaps the list, and a regression algorithm left chosen is replaced.
    html = bob.get(f"/models/train/?dataset={churn['id']}&target=monthly&task=classification"
                   f"&algorithm=ridge").content.decode()
    assert _options(html, "id_algorithm") == ["logistic_regression", "random_forest", "hist_gradient_boosting"]
    assert re.search(r'<option value="logistic_regression" selected>', html)


def test_ridge_for_a_category_target_is_refused_next_to_the_algorithm_and_starts_nothing(page_as, churn):
    from mlcore.models import Job

    response = train_via_page(page_as("bob"), churn["id"], algorithm="ridge", param_alpha="1.0")
    html = response.content.decode()
    assert response.status_code == 422
    error = re.search(r'data-testid="error-algorithm">([^<]*)<', html).group(1)
    assert "Ridge regression cannot be used for classification" in error
    assert 'aria-invalid="true" aria-describedby="id_algorithm-error"' in html
    assert Job.objects.count() == 0


def test_a_missing_model_name_is_shown_next_to_the_name_field(page_as, churn):
    response = train_via_page(page_as("bob"), churn["id"], model_name="  ")
    assert response.status_code == 422
    assert re.search(r'data-testid="error-model_name">Give the model a name.<', response.content.decode())


def test_the_feature_list_has_select_all_and_select_none(page_as, churn):
    html = page_as("bob").get(f"/models/train/?dataset={churn['id']}").content.decode()
    assert 'data-check-all="features"' in html and 'data-check-none="features"' in html


def test_the_dataset_page_offers_training_on_it_to_those_who_may_train(page_as, api_as, churn):
    api_as("bob").post(f"/api/v1/datasets/{churn['id']}/share/", {"email": "vera@acme.test", "permission": "view"},
                       format="json")
    bob_page = page_as("bob").get(f"/datasets/{churn['id']}/").content.decode()
    link = re.search(r'href="([^"]*)" data-testid="train-from-dataset"', bob_page).group(1)
    assert link == f"/models/train/?dataset={churn['id']}"
    form = page_as("bob").get(link).content.decode()
    assert re.search(rf'<option value="{churn["id"]}" selected>', form)
    vera_page = page_as("vera").get(f"/datasets/{churn['id']}/")
    assert vera_page.status_code == 200 and b"train-from-dataset" not in vera_page.content


def test_switching_algorithm_does_not_carry_a_same_named_setting_over(page_as, churn):
    # Logistic regression's "max_iter" (1,000 iterations) is gradient boosting's "max_iter" (rounds).
    html = page_as("bob").get(f"/models/train/?dataset={churn['id']}&algorithm=hist_gradient_boosting"
                              "&params_for=logistic_regression&param_max_iter=1000").content.decode()
    assert re.search(r'name="param_max_iter" id="id_param_max_iter" value="100"', html)
    same = page_as("bob").get(f"/models/train/?dataset={churn['id']}&algorithm=hist_gradient_boosting"
                              "&params_for=hist_gradient_boosting&param_max_iter=250").content.decode()
    assert re.search(r'name="param_max_iter" id="id_param_max_iter" value="250"', same)


def test_a_training_over_the_workspaces_cpu_budget_names_the_admin_on_the_form(page_as, churn, acme, world):
    from tenants.limits.quotas import meter_job, tenant_limits_set

    tenant_limits_set(tenant=acme, overrides={"cpu_seconds": 10})
    meter_job(acme, user_id=world.alice.id, cpu_ms=10_500, peak_memory_bytes=0)

    response = train_via_page(page_as("bob"), churn["id"])

    assert response.status_code == 422  # the train form answers every refusal with 422
    assert b"used 10 of its 10 CPU-seconds" in response.content
    assert b"a larger plan (ask Alice (alice@acme.test))." in response.content
