"""Prediction pages (mlcore/views/predictions.py): batch form, downloads, the try-it form."""

import re

import pytest

from tests.mlcore.conftest import run_jobs
from tests.mlcore.test_prediction_apis import train_model

pytestmark = pytest.mark.django_db


def test_bob_starts_a_batch_job_from_the_page_and_downloads_csv_and_parquet(page_as, api_as, churn):
    trained = train_model(api_as("bob"), churn["id"])
    bob = page_as("bob")
    form = bob.get("/predict/").content.decode()
    assert "Churn v1 (production)" in form
    response = bob.post("/predict/", {"model_version": trained["model_version"], "dataset": churn["id"]})
    assert response.status_code == 302
    job_url = response["Location"]
    run_jobs("prediction")
    status = bob.get(job_url + "status/").content.decode()
    assert "300 rows scored, 0 rejected." in status
    csv_url = re.search(r'href="([^"]+format=csv)"', status).group(1)
    body = b"".join(bob.get(csv_url).streaming_content)
    assert body.startswith(b'"row","prediction"') and body.count(b"\n") == 301
    parquet = b"".join(bob.get(csv_url.replace("csv", "parquet")).streaming_content)
    assert parquet[:4] == b"PAR1"


def test_missing_columns_are_shown_on_the_form(page_as, api_as, churn):
    from tests.mlcore.conftest import upload_dataset

    trained = train_model(api_as("bob"), churn["id"])
    partial = upload_dataset(api_as("bob"), b"tenure,plan\n1,basic\n", filename="p.csv")
    response = page_as("bob").post("/predict/", {"model_version": trained["model_version"],
                                                 "dataset": partial["id"]})
    assert response.status_code == 422
    assert b"missing columns the model needs: &#x27;monthly&#x27;, &#x27;autopay&#x27;" in response.content


def test_try_it_scores_one_row_on_the_version_page(page_as, api_as, churn):
    trained = train_model(api_as("bob"), churn["id"])
    bob = page_as("bob")
    page = bob.get(f"/model-versions/{trained['model_version']}/").content.decode()
    assert 'data-testid="try-form"' in page
    response = bob.post(f"/model-versions/{trained['model_version']}/try/",
                        {"f_tenure": "2", "f_monthly": "99", "f_plan": "basic", "f_autopay": "no"})
    assert response.status_code == 200
    assert b'data-testid="try-prediction">true<' in response.content
    bad = bob.post(f"/model-versions/{trained['model_version']}/try/",
                   {"f_tenure": "lots", "f_monthly": "99", "f_plan": "basic", "f_autopay": "no"})
    assert bad.status_code == 422
    assert b"tenure" in bad.content


def test_bobs_own_predicted_rows_limit_refuses_his_next_try(page_as, api_as, world, churn):
    from tenants.limits import metering
    from tests.mlcore.test_prediction_apis import limit_predicted_rows

    trained = train_model(api_as("bob"), churn["id"])
    limit_predicted_rows(api_as, world, "bob", 1)
    bob, url = page_as("bob"), f"/model-versions/{trained['model_version']}/try/"
    row = {"f_tenure": "2", "f_monthly": "99", "f_plan": "basic", "f_autopay": "no"}
    assert bob.post(url, row).status_code == 200
    metering.online_buffer.flush()

    refused = bob.post(url, row)

    assert refused.status_code == 403
    assert (b"You have used 1 of your 1 predicted rows this month; ask Alice (alice@acme.test) to "
            b"raise your limit.") in refused.content
    assert b"try-prediction" not in refused.content
    assert page_as("alice").post(url, row).status_code == 200


def test_try_it_and_the_api_count_against_the_same_monthly_budget(page_as, api_as, acme, churn):
    from tenants.limits import metering
    from tenants.limits.quotas import tenant_limits_set
    from tests.mlcore.test_prediction_apis import ROWS

    trained = train_model(api_as("bob"), churn["id"])
    tenant_limits_set(tenant=acme, overrides={"predicted_rows": 3})
    assert api_as("bob").post(f"/api/v1/models/{trained['model']}/predict/", {"rows": ROWS},
                              format="json").status_code == 200
    metering.online_buffer.flush()

    refused = page_as("bob").post(f"/model-versions/{trained['model_version']}/try/",
                                  {"f_tenure": "2", "f_monthly": "99", "f_plan": "basic", "f_autopay": "no"})

    assert refused.status_code == 403
    assert b"3 of 3 rows" in refused.content


def test_a_model_shared_for_view_has_no_try_it_form(page_as, api_as, churn):
    trained = train_model(api_as("bob"), churn["id"])
    api_as("bob").post(f"/api/v1/models/{trained['model']}/share/", {"email": "dana@example.test",
                                                                     "permission": "view"}, format="json")
    dana = page_as("dana")
    assert b"try-form" not in dana.get(f"/model-versions/{trained['model_version']}/").content
    assert dana.post(f"/model-versions/{trained['model_version']}/try/", {}).status_code == 403


def test_the_predict_page_lists_the_models_dana_may_use_and_no_other(page_as, api_as, churn):
    bob = api_as("bob")
    trained = train_model(bob, churn["id"], name="Churn for Dana")
    share = f"/api/v1/models/{trained['model']}/share/"
    dana = page_as("dana")
    bob.post(share, {"email": "dana@example.test", "permission": "view"}, format="json")
    assert b"Churn for Dana" not in dana.get("/predict/").content
    bob.post(share, {"email": "dana@example.test", "permission": "use"}, format="json")
    assert b"Churn for Dana" in dana.get("/predict/").content
    bob.delete(share, {"email": "dana@example.test"}, format="json")
    bob.post(share, {"everyone": True, "permission": "edit"}, format="json")
    assert b"Churn for Dana" in dana.get("/predict/").content


def test_bob_uploads_a_new_file_and_scores_it_in_one_step(page_as, api_as, churn):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.mlcore.conftest import churn_csv

    trained = train_model(api_as("bob"), churn["id"])
    bob = page_as("bob")
    response = bob.post("/predict/upload/", {"model_version": trained["model_version"],
                                             "file": SimpleUploadedFile("new.csv", churn_csv(rows=50, seed=3))})
    assert response.status_code == 302
    assert re.match(r"^/jobs/\d+/$", response["Location"])
    run_jobs("prediction")
    assert b"50 rows scored" in bob.get(response["Location"] + "status/").content
    names = [d["name"] for d in api_as("bob").get("/api/v1/datasets/").json()["results"]]
    assert "Scoring new.csv" in names


def test_a_bad_file_for_scoring_is_refused_and_leaves_nothing(page_as, api_as, churn, acme):
    from django.core.files.uploadedfile import SimpleUploadedFile

    trained = train_model(api_as("bob"), churn["id"])
    before = api_as("bob").get("/api/v1/usage/").json()["usage"]
    response = page_as("bob").post("/predict/upload/", {"model_version": trained["model_version"],
                                                        "file": SimpleUploadedFile("bad.csv", b"a,b\n1,2,3\n")},
                                   follow=True)
    assert b"Line 2" in response.content
    after = api_as("bob").get("/api/v1/usage/").json()["usage"]
    for key in ("storage_bytes", "datasets", "model_versions", "predicted_rows"):
        assert after[key] == before[key]


# --- score a new file: refusals in place, nothing left behind; the upload script's answers ------
XHR = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}


def _score_file(client, version_id, content: bytes, name: str = "new.csv", **extra):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post("/predict/upload/", {"model_version": version_id,
                                            "file": SimpleUploadedFile(name, content)}, **extra)


def test_a_file_missing_a_feature_is_refused_on_the_form_and_leaves_nothing(page_as, api_as, churn, acme):
    from django_tenants.utils import tenant_context

    from mlcore.models import Dataset
    from tests.mlcore.storage_support import every_file

    trained = train_model(api_as("bob"), churn["id"])
    before = api_as("bob").get("/api/v1/usage/").json()["usage"]
    with tenant_context(acme):
        datasets, files = Dataset.objects.count(), len(every_file())

    response = _score_file(page_as("bob"), trained["model_version"], b"tenure,plan,autopay\n2,basic,no\n",
                           name="no-monthly.csv", **XHR)

    assert response.status_code == 422
    page = response.content.decode()
    assert 'data-testid="upload-score-error"' in page
    assert "The data is missing a column the model needs: &#x27;monthly&#x27;." in page
    with tenant_context(acme):
        assert Dataset.objects.count() == datasets
    assert len(every_file()) == files
    after = api_as("bob").get("/api/v1/usage/").json()["usage"]
    assert (after["storage_bytes"], after["datasets"]) == (before["storage_bytes"], before["datasets"])


def test_a_refused_file_keeps_the_chosen_version_and_id_column_on_the_form(page_as, api_as, churn):
    from django.core.files.uploadedfile import SimpleUploadedFile

    trained = train_model(api_as("bob"), churn["id"])
    response = page_as("bob").post("/predict/upload/", {
        "model_version": trained["model_version"], "id_column": "customer",
        "file": SimpleUploadedFile("x.csv", b"tenure,monthly,plan,autopay\n2,9,basic,no\n")})

    assert response.status_code == 422
    assert b"&#x27;customer&#x27;" in response.content
    assert b'value="customer"' in response.content


def test_the_upload_script_gets_the_job_page_address_and_the_message_waits_there(page_as, api_as, churn):
    from tests.mlcore.conftest import churn_csv

    trained = train_model(api_as("bob"), churn["id"])
    bob = page_as("bob")
    response = _score_file(bob, trained["model_version"], churn_csv(rows=40, seed=5), **XHR)

    assert response.status_code == 200
    location = response.json()["location"]
    assert re.match(r"^/jobs/\d+/$", location)
    assert b"Uploaded Scoring new.csv (40 rows); scoring started." in bob.get(location).content


def test_the_same_file_can_be_scored_twice(page_as, api_as, churn):
    from tests.mlcore.conftest import churn_csv

    trained = train_model(api_as("bob"), churn["id"])
    bob = page_as("bob")
    assert _score_file(bob, trained["model_version"], churn_csv(rows=20, seed=5)).status_code == 302
    again = _score_file(bob, trained["model_version"], churn_csv(rows=20, seed=5), **XHR)
    assert again.status_code == 200
    assert b"Uploaded Scoring new.csv (2) (20 rows)" in bob.get(again.json()["location"]).content


# --- one default model for both forms; the job page says what it scored --------------------------
def _selected(page: str, select_id: str) -> list[str]:
    select = re.search(rf'<select[^>]*id="{select_id}".*?</select>', page, re.S).group(0)
    return re.findall(r'<option value="(\d+)" selected>', select)


def test_both_predict_forms_preselect_the_same_production_version(page_as, api_as, churn):
    bob_api, bob = api_as("bob"), page_as("bob")
    alpha = train_model(bob_api, churn["id"], name="Alpha")
    zulu = train_model(bob_api, churn["id"], name="Zulu")

    page = bob.get("/predict/").content.decode()
    # Nothing scored yet: the model trained most recently.
    assert _selected(page, "id_model_version") == [str(zulu["model_version"])]
    assert _selected(page, "id_upload_version") == [str(zulu["model_version"])]

    assert bob.post("/predict/", {"model_version": alpha["model_version"], "dataset": churn["id"]}).status_code == 302
    page = bob.get("/predict/").content.decode()
    # Then the model Bob scored with last.
    assert _selected(page, "id_model_version") == [str(alpha["model_version"])]
    assert _selected(page, "id_upload_version") == [str(alpha["model_version"])]

    page = bob.get(f"/predict/?model_version={zulu['model_version']}").content.decode()
    assert _selected(page, "id_upload_version") == [str(zulu["model_version"])]


def test_the_job_page_links_the_version_and_dataset_it_scored_and_its_signed_receipt(page_as, api_as, churn):
    import json

    trained = train_model(api_as("bob"), churn["id"])
    bob = page_as("bob")
    job_url = bob.post("/predict/", {"model_version": trained["model_version"], "dataset": churn["id"]})["Location"]
    run_jobs("prediction")

    page = bob.get(job_url).content.decode()
    assert f'<a href="/model-versions/{trained["model_version"]}/">Churn v1</a>' in page
    assert f'<a href="/datasets/{churn["id"]}/">churn</a>' in page
    receipt_url = re.search(r'href="([^"]+)" data-testid="download-receipt"', page).group(1)
    assert receipt_url == job_url + "receipt/"

    response = bob.get(receipt_url)
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="receipt-{job_url.split("/")[2]}.json"'
    receipt = json.loads(response.content)
    assert receipt == api_as("bob").get(f"/api/v1{job_url}receipt/").json()
    assert receipt["model_version"] == trained["model_version"] and receipt["signature"]
    assert page_as("vera").get(receipt_url).status_code == 403


# --- "try it": required fields, warnings outside the training range, readable output -------------
ROW = {"f_tenure": "2", "f_monthly": "99", "f_plan": "basic", "f_autopay": "no"}


def test_try_it_refuses_a_blank_row_naming_every_field_and_scores_nothing(page_as, api_as, churn):
    from tenants.limits import metering

    trained = train_model(api_as("bob"), churn["id"])
    bob = page_as("bob")
    page = bob.get(f"/model-versions/{trained['model_version']}/").content.decode()
    assert page.count('name="f_') == 4 and page.count(" required") >= 4

    response = bob.post(f"/model-versions/{trained['model_version']}/try/", {**ROW, "f_tenure": " ", "f_plan": ""})

    assert response.status_code == 400
    body = response.content.decode()
    assert "Enter a value for tenure." in body and "Enter a value for plan." in body
    assert "Enter a value for monthly." not in body
    assert 'value="99"' in body  # what was typed stays
    assert "try-prediction" not in body
    assert metering.online_buffer.flush() == 0


def test_try_it_warns_about_a_value_outside_the_training_range_but_still_predicts(page_as, api_as, churn):
    trained = train_model(api_as("bob"), churn["id"])
    url = f"/model-versions/{trained['model_version']}/try/"

    inside = page_as("bob").post(url, ROW).content.decode()
    assert "try-field-warning" not in inside and "try-warning" not in inside

    response = page_as("bob").post(url, {**ROW, "f_monthly": "99999"})
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-testid="try-prediction"' in body
    assert re.search(r'data-testid="try-field-warning">Outside the range seen in training \([\d.,-]+ to [\d.,]+\): '
                     r"the prediction may be unreliable.<", body)
    assert "1 value is outside the range seen in training" in body


def test_a_version_trained_before_ranges_were_kept_predicts_without_warning_or_sample(page_as, api_as, churn, acme):
    from django_tenants.utils import tenant_context

    from mlcore.models import ModelVersion

    trained = train_model(api_as("bob"), churn["id"])
    with tenant_context(acme):
        ModelVersion.objects.filter(pk=trained["model_version"]).update(training_ranges={})
    bob = page_as("bob")
    assert b"data-fill-sample" not in bob.get(f"/model-versions/{trained['model_version']}/").content
    response = bob.post(f"/model-versions/{trained['model_version']}/try/", {**ROW, "f_monthly": "99999"})
    assert response.status_code == 200
    assert b"try-prediction" in response.content and b"outside the range" not in response.content


def test_the_version_page_offers_a_sample_row_from_the_training_data(page_as, api_as, churn):
    trained = train_model(api_as("bob"), churn["id"])
    page = page_as("bob").get(f"/model-versions/{trained['model_version']}/").content.decode()
    assert 'data-testid="fill-sample"' in page
    samples = dict(re.findall(r'name="f_(\w+)"[^>]*data-sample="([^"]*)"', page, re.S))
    assert set(samples) == {"tenure", "monthly", "plan", "autopay"}
    assert samples["plan"] in ("basic", "plus", "pro") and samples["autopay"] in ("true", "false")  # read as a boolean
    assert samples["tenure"].isdigit() and 1 <= int(samples["tenure"]) <= 71
    assert "Seen in training: 1 to 71" in page


def test_try_it_shows_probabilities_as_percentages_and_rounds_regression_output(page_as, api_as, churn):
    classifier = train_model(api_as("bob"), churn["id"])
    body = page_as("bob").post(f"/model-versions/{classifier['model_version']}/try/", ROW).content.decode()
    percents = re.findall(r"<span>(\d+\.\d)%</span>", body)
    assert len(percents) == 2 and abs(sum(float(p) for p in percents) - 100) < 0.2

    regressor = train_model(api_as("bob"), churn["id"], name="Monthly", target="monthly", algorithm="ridge",
                            task="regression")
    response = page_as("bob").post(f"/model-versions/{regressor['model_version']}/try/",
                                   {"f_tenure": "7", "f_plan": "pro", "f_autopay": "yes", "f_churned": "no"})
    shown = re.search(r'data-testid="try-prediction">([^<]+)<', response.content.decode()).group(1)
    assert len(shown.replace(",", "").replace(".", "").replace("-", "").lstrip("0")) <= 4, shown


def test_the_predict_page_says_what_to_do_when_there_is_no_model_to_use(page_as):
    page = page_as("bob").get("/predict/").content.decode()
    assert 'data-testid="predict-empty"' in page and "No model to score with yet" in page
    assert 'href="/models/train/"' in page
    assert "upload-and-score" not in page
