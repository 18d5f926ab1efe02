"""Dataset pages (mlcore/views/datasets.py): upload form, profile page, share, delete."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import tenant_context

from mlcore.models import Dataset
from tests.mlcore.conftest import churn_csv

pytestmark = pytest.mark.django_db

NASTY = b'name,score,joined\n"<script>alert(1)</script>",3,2024-01-02\nbob,4,2024-02-03\n'


def upload_page(client, content, filename="data.csv", **fields):
    return client.post("/datasets/upload/", {"file": SimpleUploadedFile(filename, content), **fields})


def test_bob_uploads_through_the_page_and_lands_on_the_profile(page_as):
    bob = page_as("bob")
    response = upload_page(bob, churn_csv(), name="Churn")
    assert response.status_code == 302
    page = bob.get(response["Location"])
    html = page.content.decode()
    assert 'data-testid="dataset-name">Churn<' in html
    assert html.count('data-testid="profile-row"') == 5
    assert html.count("<svg") >= 5  # a chart per column
    assert "Uploaded Churn: 300 rows, 5 columns." in html


def test_every_preview_cell_is_escaped(page_as):
    bob = page_as("bob")
    response = upload_page(bob, NASTY)
    html = bob.get(response["Location"]).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_bad_file_shows_the_reason_on_the_form_and_stores_nothing(page_as, acme):
    response = upload_page(page_as("bob"), b"a,b\n1,2,3\n")
    assert response.status_code == 400
    assert b'data-testid="upload-error"' in response.content
    assert b"Line 2" in response.content
    with tenant_context(acme):
        assert Dataset.objects.count() == 0


def test_a_windows_1252_file_is_refused_as_utf8_then_accepted_once_declared(page_as, acme):
    bob = page_as("bob")
    export = "ville,ventes\nMontréal,10\nQuébec,7\n".encode("cp1252")
    refused = upload_page(bob, export, encoding="utf-8")
    assert refused.status_code == 400
    html = refused.content.decode()
    assert "not valid UTF-8 text" in html and "choose that encoding when you upload it" in html
    assert '<option value="utf-8" selected>' in html  # the form keeps what was chosen

    response = upload_page(bob, export, encoding="cp1252")
    assert response.status_code == 302
    html = bob.get(response["Location"]).content.decode()
    assert "Montréal" in html
    assert "CSV · cp1252" in html


def test_an_unknown_encoding_is_refused_on_the_form(page_as, acme):
    response = upload_page(page_as("bob"), b"a,b\n1,2\n", encoding="ebcdic-klingon")
    assert response.status_code == 400
    assert b"&#x27;ebcdic-klingon&#x27; is not a text encoding we know." in response.content
    assert b'<option value="cp1252"' in response.content
    with tenant_context(acme):
        assert Dataset.objects.count() == 0


def test_the_storage_quota_is_refused_on_the_page_with_the_numbers(page_as, acme):
    acme.limit_overrides = {"storage_bytes": 50}
    acme.save(update_fields=["limit_overrides"])
    response = upload_page(page_as("bob"), churn_csv())
    assert response.status_code == 413
    assert b"50 bytes" in response.content


def test_a_second_file_is_refused_on_the_page_and_frees_what_it_held(page_as, acme):
    from tenants.models import TenantUsage

    response = page_as("bob").post("/datasets/upload/", {"file": [SimpleUploadedFile("a.csv", churn_csv()),
                                                                  SimpleUploadedFile("b.csv", churn_csv())]})
    assert response.status_code == 400
    assert b"Send a single file in the &#x27;file&#x27; field." in response.content
    held = TenantUsage.objects.get(tenant=acme)
    assert (held.datasets, held.storage_bytes) == (0, 0)


def test_vera_has_no_upload_page(page_as):
    vera = page_as("vera")
    assert vera.get("/datasets/upload/").status_code == 403
    assert upload_page(vera, churn_csv()).status_code == 403


def test_bob_shares_with_vera_who_then_sees_it_in_her_list(page_as):
    bob = page_as("bob")
    detail = upload_page(bob, churn_csv(), name="Churn")["Location"]
    dataset_id = detail.strip("/").split("/")[-1]
    response = bob.post(f"/datasets/{dataset_id}/share/", {"email": "vera@acme.test", "permission": "view"})
    assert response.status_code == 302
    assert b"Churn" in page_as("vera").get("/datasets/").content
    response = bob.post(f"/datasets/{dataset_id}/share/", {"email": "vera@acme.test", "permission": "edit"})
    assert response.status_code == 400
    assert b"viewer" in response.content


def test_deleting_asks_first_then_frees_the_storage(page_as, api_as, acme):
    bob = page_as("bob")
    detail = upload_page(bob, churn_csv(), name="Churn")["Location"]
    dataset_id = detail.strip("/").split("/")[-1]
    assert b"Delete dataset" in bob.get(f"/datasets/{dataset_id}/delete/").content
    assert bob.post(f"/datasets/{dataset_id}/delete/").status_code == 302
    assert api_as("bob").get("/api/v1/usage/").json()["usage"]["storage_bytes"] == 0


def test_the_upload_script_gets_the_dataset_address_and_the_message_waits_there(page_as):
    bob = page_as("bob")
    response = bob.post("/datasets/upload/", {"file": SimpleUploadedFile("xhr.csv", churn_csv(rows=30)),
                                              "name": "Sent by the script"},
                        HTTP_X_REQUESTED_WITH="XMLHttpRequest")

    assert response.status_code == 200
    location = response.json()["location"]
    assert re.match(r"^/datasets/\d+/$", location)
    assert b"Uploaded Sent by the script: 30 rows, 5 columns." in bob.get(location).content
