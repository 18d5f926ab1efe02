"""REST API for datasets (mlcore/apis.py): upload, errors, quotas, permissions, download."""

from __future__ import annotations

import io
import logging
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import tenant_context

from mlcore.ingest import IngestLimits, ingest
from mlcore.ingest.source import UTF8_HINT
from mlcore.models import Dataset
from tenants.models import TenantUsage

pytestmark = pytest.mark.django_db

SALES = (b"region,units,price,returned,sold_on\n"
         b"north,10,2.5,no,2024-01-03\n"
         b"south,7,3.0,yes,2024-01-04\n"
         b"north,3,,no,2024-01-05\n"
         b"east,12,4.25,no,2024-01-06\n")


def upload(client, content: bytes = SALES, filename: str = "sales.csv", **fields):
    return client.post("/api/v1/datasets/", {"file": SimpleUploadedFile(filename, content), **fields},
                       format="multipart")


def stored_files(tenant) -> list:
    folder = settings.PORTAL_STORAGE_DIR / tenant.schema_name
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def align_next_id(tenant, table: str, next_id: int) -> None:
    """Make the tenant's next row get `next_id` (ids repeat across schemas; tests prove it)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s, false)",
                       [f'"{tenant.schema_name}".{table}', next_id])


def usage(tenant) -> TenantUsage:
    return TenantUsage.objects.get(tenant=tenant)


def assert_nothing_stored(tenant, files_before):
    with tenant_context(tenant):
        assert Dataset.objects.count() == 0
    assert usage(tenant).storage_bytes == 0
    assert usage(tenant).datasets == 0
    assert sorted(stored_files(tenant)) == sorted(files_before)


# --- upload ------------------------------------------------------------------------------------
def test_bob_uploads_a_csv_and_gets_its_profile(api_as, acme):
    response = upload(api_as("bob"), name="Sales 2024")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "Sales 2024"
    assert body["rows"] == 4
    assert body["size_bytes"] == len(SALES)
    assert body["owner"] == "bob@acme.test"
    types = {c["name"]: c["type"] for c in body["columns"]}
    assert types == {"region": "category", "units": "number", "price": "number",
                     "returned": "boolean", "sold_on": "datetime"}
    price = next(c for c in body["columns"] if c["name"] == "price")
    assert price["missing"] == 1
    assert price["min"] == 2.5 and price["max"] == 4.25
    assert body["encoding"] == "utf-8"


def test_usage_counts_the_exact_bytes_stored_and_deleting_frees_them(api_as, acme):
    bob = api_as("bob")
    first = upload(bob).json()
    upload(bob, b"a,b\n1,2\n", filename="tiny.csv")
    assert usage(acme).storage_bytes == len(SALES) + len(b"a,b\n1,2\n")
    assert bob.get("/api/v1/usage/").json()["usage"]["storage_bytes"] == len(SALES) + 8
    assert bob.get("/api/v1/usage/").json()["usage"]["datasets"] == 2
    assert bob.delete(f"/api/v1/datasets/{first['id']}/").status_code == 204
    assert usage(acme).storage_bytes == 8
    assert usage(acme).datasets == 1


def test_the_name_defaults_to_the_file_name_and_a_taken_name_is_a_409(api_as):
    bob = api_as("bob")
    assert upload(bob).json()["name"] == "sales"
    assert upload(bob).json()["name"] == "sales (2)"
    response = upload(bob, name="sales")
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]


BAD_FILES = [
    (b"", "x.csv", 400, "empty"),
    (b"1,2,3\n4,5,6\n", "x.csv", 400, "header"),
    (b"a,,c\n1,2,3\n", "x.csv", 400, "column 2"),
    (b"id,name,id\n1,x,2\n", "x.csv", 400, "'id'"),
    (b"a,b,c\n1,2,3\n4,5\n", "x.csv", 400, "Line 3"),
    (b"a,b\n1,caf\xe9\n", "x.csv", 400, "UTF-8"),
    (b"\x00\x01\x02\x03binary\x00\x00\xff\xfe" * 50, "x.csv", 400, "binary"),
    (b"PK\x03\x04" + b"\x00" * 200, "book.xlsx", 400, "CSV"),
]


@pytest.mark.parametrize("content, filename, status, words", BAD_FILES)
def test_a_bad_file_is_refused_clearly_and_leaves_nothing_behind(api_as, acme, content, filename,
                                                                  status, words):
    before = stored_files(acme)
    response = upload(api_as("bob"), content, filename=filename)
    assert response.status_code == status, response.content
    body = response.json()
    assert words.lower() in body["detail"].lower()
    assert body["errors"][0]["field"] == "file"
    assert_nothing_stored(acme, before)


# --- profiled while the file arrives, with the answers of a pass over the stored file ------------
def large_csv(rows: int) -> bytes:
    """Several MB: many chunks of the upload handler and blocks of the profile."""
    return b"id,segment,amount,signed_up,note\n" + b"".join(
        b"%d,%s,%d.%02d,2024-%02d-%02d,note %d\n" % (i, (b"retail", b"smb", b"public")[i % 3], i % 977,
                                                    i % 100, i % 12 + 1, i % 28 + 1, i % 5_000)
        for i in range(rows))


def read_back_reasons(caplog) -> list[str]:
    return [r.reason for r in caplog.records if r.getMessage() == "upload read back to be profiled"]


def ingest_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name in ("ingest-feed", "ingest-parse")]


def test_a_large_csv_is_profiled_as_it_arrives_exactly_as_a_pass_over_it(api_as, acme, caplog):
    caplog.set_level(logging.INFO, logger="mlcore.services.datasets")
    content = large_csv(120_000)

    response = upload(api_as("bob"), content, filename="customers.csv")

    assert response.status_code == 201, response.content
    expected = ingest(io.BytesIO(content), filename="customers.csv",
                      limits=IngestLimits(max_rows=10**6, max_columns=100)).to_dict()
    assert response.json()["rows"] == expected["rows"] == 120_000
    assert response.json()["columns"] == expected["columns"]
    assert read_back_reasons(caplog) == []
    assert ingest_threads() == []


def test_a_ragged_row_deep_in_a_large_upload_is_a_400_naming_its_line(api_as, acme):
    content = large_csv(100_000) + b"1,retail\n" + large_csv(20_000).split(b"\n", 1)[1]
    before = stored_files(acme)

    response = upload(api_as("bob"), content, filename="customers.csv")

    assert response.status_code == 400
    assert response.json()["detail"] == "Line 100,002 has 2 fields but the header has 5 columns."
    assert response.json()["line"] == 100_002
    assert_nothing_stored(acme, before)
    assert ingest_threads() == []


def test_a_large_upload_over_the_row_limit_is_a_413_and_leaves_nothing(api_as, acme):
    acme.limit_overrides = {"rows_per_dataset": 50_000}
    acme.save(update_fields=["limit_overrides"])
    before = stored_files(acme)

    response = upload(api_as("bob"), large_csv(120_000), filename="customers.csv")

    assert response.status_code == 413
    assert response.json()["detail"] == "The file has more than 50,000 rows, the limit of your plan."
    assert_nothing_stored(acme, before)
    assert ingest_threads() == []


def test_an_upload_refused_while_it_streams_leaves_no_profile_running(api_as, acme):
    acme.limit_overrides = {"storage_bytes": 1_000_000}
    acme.save(update_fields=["limit_overrides"])
    before = stored_files(acme)

    response = upload(api_as("bob"), large_csv(120_000), filename="customers.csv")

    assert response.status_code == 413
    assert_nothing_stored(acme, before)
    assert ingest_threads() == []


def test_an_encoding_declared_after_the_file_is_read_back_as_declared(api_as, acme, caplog):
    caplog.set_level(logging.INFO, logger="mlcore.services.datasets")
    content = ("ville,ventes\n" + "Montréal,10\nQuébec,7\n" * 50_000).encode("cp1252")

    response = upload(api_as("bob"), content, filename="ventes.csv", encoding="cp1252")

    assert response.status_code == 201, response.content
    assert response.json()["encoding"] == "cp1252"
    assert response.json()["columns"][0]["top"][0] == {"value": "Montréal", "count": 50_000}
    assert read_back_reasons(caplog) == ["encoding"]
    assert ingest_threads() == []


def test_a_parquet_file_is_read_back_from_storage_and_profiled(api_as, acme, caplog):
    caplog.set_level(logging.INFO, logger="mlcore.services.datasets")
    buffer = io.BytesIO()
    pq.write_table(pa.table({"city": ["Oslo", "Bergen", "Oslo"] * 1000, "sales": list(range(3000))}), buffer)

    response = upload(api_as("bob"), buffer.getvalue(), filename="sales.parquet")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["format"], body["rows"]) == ("parquet", 3000)
    assert [c["type"] for c in body["columns"]] == ["category", "number"]
    assert read_back_reasons(caplog) == ["parquet"]
    assert ingest_threads() == []


# --- text encodings: the file is kept as it came, and read as the uploader declared -------------
EXCEL_EXPORT = "ville,ventes\nMontréal,10\nQuébec,7\nMontréal,3\n".encode("cp1252")


def test_bob_declares_the_encoding_of_an_excel_export(api_as, acme):
    bob = api_as("bob")
    before = stored_files(acme)
    refused = upload(bob, EXCEL_EXPORT, filename="ventes.csv")
    assert refused.status_code == 400
    assert refused.json()["detail"] == (
        "Line 2, column 'ville': the bytes are not valid UTF-8 text (at byte 0xE9)." + UTF8_HINT)
    assert_nothing_stored(acme, before)

    response = upload(bob, EXCEL_EXPORT, filename="ventes.csv", encoding="cp1252")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["encoding"] == "cp1252"
    ville = next(c for c in body["columns"] if c["name"] == "ville")
    assert ville["top"][0] == {"value": "Montréal", "count": 2}
    preview = bob.get(f"/api/v1/datasets/{body['id']}/preview/").json()
    assert preview["rows"][:2] == [["Montréal", "10"], ["Québec", "7"]]
    download = bob.get(f"/api/v1/datasets/{body['id']}/download/")
    assert b"".join(download.streaming_content) == EXCEL_EXPORT  # the original bytes
    assert download["Content-Type"] == "text/csv; charset=windows-1252"


@pytest.mark.parametrize("name", ["klingon", "base64"])
def test_an_encoding_that_is_not_a_character_set_is_a_400_on_that_field(api_as, acme, name):
    before = stored_files(acme)
    response = upload(api_as("bob"), SALES, encoding=name)
    assert response.status_code == 400
    message = (f"'{name}' is not a text encoding we know. Choose one such as utf-8, cp1252 "
               f"(Windows-1252), latin-1 or utf-16.")
    assert response.json()["detail"] == message
    assert response.json()["errors"] == [{"field": "encoding", "message": message}]
    assert_nothing_stored(acme, before)


def test_utf16_declared_on_a_file_without_a_byte_order_mark_is_a_400_naming_the_choices(api_as, acme):
    before = stored_files(acme)
    response = upload(api_as("bob"), "city,sales\nOslo,3\n".encode("utf-16-le"), encoding="utf-16")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/dataset-encoding"
    assert "byte-order mark" in response.json()["detail"] and "UTF-16-LE" in response.json()["detail"]
    assert_nothing_stored(acme, before)
    assert usage(acme).datasets == 0


def test_a_missing_file_field_is_a_400(api_as, acme):
    response = api_as("bob").post("/api/v1/datasets/", {"name": "x"}, format="multipart")
    assert response.status_code == 400
    assert "Choose a file" in response.json()["detail"]
    assert usage(acme).datasets == 0


def test_too_many_rows_for_the_plan_is_a_413(api_as, acme):
    acme.limit_overrides = {"rows_per_dataset": 3}
    acme.save(update_fields=["limit_overrides"])
    before = stored_files(acme)
    response = upload(api_as("bob"))
    assert response.status_code == 413
    assert "3" in response.json()["detail"] and "rows" in response.json()["detail"]
    assert_nothing_stored(acme, before)


def test_too_many_columns_for_the_plan_is_a_413(api_as, acme):
    acme.limit_overrides = {"columns_per_dataset": 4}
    acme.save(update_fields=["limit_overrides"])
    before = stored_files(acme)
    response = upload(api_as("bob"))
    assert response.status_code == 413
    assert "columns" in response.json()["detail"]
    assert_nothing_stored(acme, before)


def test_a_parquet_file_with_a_value_too_large_to_decode_is_a_413(api_as, acme):
    buffer = io.BytesIO()
    pq.write_table(pa.table({"note": ["ab" * (5 * 1024 * 1024)]}), buffer, compression="zstd")
    before = stored_files(acme)
    response = upload(api_as("bob"), buffer.getvalue(), "notes.parquet")
    assert response.status_code == 413
    assert response.json()["detail"].startswith(
        "Column 'note' of row group 1 cannot be read within the memory an upload may use: its "
        "dictionary page decodes to 10.0 MB")
    assert_nothing_stored(acme, before)


def test_an_upload_over_the_storage_quota_is_refused_while_streaming(api_as, acme):
    acme.limit_overrides = {"storage_bytes": 100}
    acme.save(update_fields=["limit_overrides"])
    before = stored_files(acme)
    response = upload(api_as("bob"), SALES * 20)
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert "100 bytes" in detail  # the limit is in the message, with what is used
    assert "0 bytes" in detail
    assert_nothing_stored(acme, before)


def test_the_dataset_count_limit_is_a_403_quota_problem(api_as, acme):
    acme.limit_overrides = {"datasets": 1}
    acme.save(update_fields=["limit_overrides"])
    bob = api_as("bob")
    assert upload(bob).status_code == 201
    response = upload(bob, name="another")
    assert response.status_code == 403
    assert response.json()["type"].endswith("quota-exceeded")
    assert usage(acme).datasets == 1
    assert usage(acme).storage_bytes == len(SALES)


def test_a_second_file_in_the_upload_is_a_400_and_leaves_nothing(api_as, acme):
    before = stored_files(acme)
    response = api_as("bob").post("/api/v1/datasets/", {"file": [SimpleUploadedFile("a.csv", SALES),
                                                                 SimpleUploadedFile("b.csv", SALES)]},
                                  format="multipart")
    assert response.status_code == 400
    body = response.json()
    assert (body["type"], body["detail"]) == ("about:blank", "Send a single file in the 'file' field.")
    assert_nothing_stored(acme, before)
    assert (usage(acme).datasets, usage(acme).storage_bytes) == (0, 0)


def test_a_file_over_the_upload_size_limit_is_a_413_and_leaves_nothing(api_as, acme, settings):
    settings.PORTAL_MAX_UPLOAD_BYTES = 100
    before = stored_files(acme)
    response = upload(api_as("bob"), SALES * 20)
    assert response.status_code == 413
    assert response.json()["detail"] == "The file is larger than the 100 bytes upload limit."
    assert_nothing_stored(acme, before)
    assert (usage(acme).datasets, usage(acme).storage_bytes) == (0, 0)


# --- who sees what -----------------------------------------------------------------------------
def test_lists_show_only_what_each_person_may_view(api_as):
    bob = api_as("bob")
    bobs = upload(bob).json()
    danas = upload(api_as("dana"), b"x,y\n1,2\n", filename="dana.csv").json()

    def names(client):
        return sorted(d["name"] for d in client.get("/api/v1/datasets/").json()["results"])

    assert names(api_as("alice")) == ["dana", "sales"]
    assert names(bob) == ["sales"]
    assert names(api_as("vera")) == []
    bob.post(f"/api/v1/datasets/{bobs['id']}/share/", {"email": "vera@acme.test", "permission": "view"},
             format="json")
    assert names(api_as("vera")) == ["sales"]
    assert danas["name"] not in names(api_as("vera"))


def test_audrey_the_auditor_gets_403_on_datasets(api_as):
    dataset = upload(api_as("bob")).json()
    audrey = api_as("audrey")
    assert audrey.get("/api/v1/datasets/").status_code == 403
    assert audrey.get(f"/api/v1/datasets/{dataset['id']}/").status_code == 403
    assert audrey.get(f"/api/v1/datasets/{dataset['id']}/download/").status_code == 403
    assert upload(audrey).status_code == 403


def test_vera_the_viewer_cannot_upload(api_as, acme):
    assert upload(api_as("vera")).status_code == 403
    assert usage(acme).datasets == 0


def test_charlie_gets_404_for_acmes_dataset_ids(api_as, world):
    dataset = upload(api_as("bob")).json()
    charlie = api_as("charlie")  # globex token on globex's host
    for path in ["", "preview/", "download/", "share/"]:
        assert charlie.get(f"/api/v1/datasets/{dataset['id']}/{path}").status_code == 404
    assert charlie.delete(f"/api/v1/datasets/{dataset['id']}/").status_code == 404
    # Charlie's token on acme's host is refused before anything else.
    from tests.factories import token_client

    on_acme = token_client(world.charlie, world.globex, host_slug="acme")
    assert on_acme.get(f"/api/v1/datasets/{dataset['id']}/").status_code == 404
    with tenant_context(world.acme):
        assert Dataset.objects.filter(pk=dataset["id"]).exists()


def test_the_same_id_in_two_tenants_stays_separate(api_as, globex):
    acme_ds = upload(api_as("bob"), name="acme secret").json()
    align_next_id(globex, "mlcore_dataset", acme_ds["id"])
    globex_ds = upload(api_as("charlie"), b"k,v\n1,2\n", filename="g.csv", name="globex data").json()
    assert acme_ds["id"] == globex_ds["id"]  # each schema numbers its own rows
    assert api_as("charlie").get(f"/api/v1/datasets/{globex_ds['id']}/").json()["name"] == "globex data"
    assert api_as("bob").get(f"/api/v1/datasets/{acme_ds['id']}/").json()["name"] == "acme secret"


def test_dana_cannot_see_bobs_dataset_until_he_shares_it(api_as):
    dataset = upload(api_as("bob")).json()
    dana = api_as("dana")
    assert dana.get(f"/api/v1/datasets/{dataset['id']}/").status_code == 404
    api_as("bob").post(f"/api/v1/datasets/{dataset['id']}/share/",
                       {"email": "dana@example.test", "permission": "view"}, format="json")
    assert dana.get(f"/api/v1/datasets/{dataset['id']}/").status_code == 200
    assert dana.get(f"/api/v1/datasets/{dataset['id']}/download/").status_code == 200
    assert dana.patch(f"/api/v1/datasets/{dataset['id']}/", {"name": "mine"}, format="json").status_code == 403
    assert dana.delete(f"/api/v1/datasets/{dataset['id']}/").status_code == 403
    assert dana.get(f"/api/v1/datasets/{dataset['id']}/share/").status_code == 403


def test_an_edit_grant_lets_dana_rename_but_not_delete_or_share(api_as):
    bob = api_as("bob")
    dataset = upload(bob).json()
    bob.post(f"/api/v1/datasets/{dataset['id']}/share/", {"email": "dana@example.test", "permission": "edit"},
             format="json")
    dana = api_as("dana")
    response = dana.patch(f"/api/v1/datasets/{dataset['id']}/", {"name": "Sales (checked)"}, format="json")
    assert response.status_code == 200
    assert response.json()["name"] == "Sales (checked)"
    assert dana.delete(f"/api/v1/datasets/{dataset['id']}/").status_code == 403
    assert dana.post(f"/api/v1/datasets/{dataset['id']}/share/",
                     {"email": "vera@acme.test", "permission": "view"}, format="json").status_code == 403


def test_share_refuses_grants_the_grantees_role_cannot_hold(api_as):
    bob = api_as("bob")
    dataset = upload(bob).json()
    url = f"/api/v1/datasets/{dataset['id']}/share/"
    response = bob.post(url, {"email": "vera@acme.test", "permission": "edit"}, format="json")
    assert response.status_code == 400
    assert "viewer" in response.json()["detail"]
    response = bob.post(url, {"email": "audrey@acme.test", "permission": "view"}, format="json")
    assert response.status_code == 400
    response = bob.post(url, {"email": "charlie@globex.test", "permission": "view"}, format="json")
    assert response.status_code == 400
    assert "not a member" in response.json()["detail"]
    assert bob.get(url).json() == []


def test_sharing_with_everyone_gives_viewers_view_only(api_as):
    bob = api_as("bob")
    dataset = upload(bob).json()
    url = f"/api/v1/datasets/{dataset['id']}/share/"
    grants = bob.post(url, {"everyone": True, "permission": "edit"}, format="json").json()
    assert grants == [{"everyone": True, "permission": "edit"}]
    vera = api_as("vera")
    assert vera.get(f"/api/v1/datasets/{dataset['id']}/").status_code == 200
    assert vera.patch(f"/api/v1/datasets/{dataset['id']}/", {"name": "x"}, format="json").status_code == 403
    assert api_as("dana").patch(f"/api/v1/datasets/{dataset['id']}/", {"name": "y"},
                                format="json").status_code == 200
    bob.delete(url, {"everyone": True}, format="json")
    assert vera.get(f"/api/v1/datasets/{dataset['id']}/").status_code == 404


def test_the_grants_list_names_people_and_permissions(api_as):
    bob = api_as("bob")
    dataset = upload(bob).json()
    url = f"/api/v1/datasets/{dataset['id']}/share/"
    bob.post(url, {"email": "dana@example.test", "permission": "edit"}, format="json")
    bob.post(url, {"email": "vera@acme.test", "permission": "view"}, format="json")
    assert bob.get(url).json() == [{"email": "dana@example.test", "permission": "edit"},
                                   {"email": "vera@acme.test", "permission": "view"}]
    bob.delete(url, {"email": "dana@example.test"}, format="json")
    assert bob.get(url).json() == [{"email": "vera@acme.test", "permission": "view"}]


def test_alice_the_admin_can_do_everything_to_bobs_dataset(api_as):
    dataset = upload(api_as("bob")).json()
    alice = api_as("alice")
    assert alice.patch(f"/api/v1/datasets/{dataset['id']}/", {"description": "checked"},
                       format="json").status_code == 200
    assert alice.get(f"/api/v1/datasets/{dataset['id']}/share/").status_code == 200
    assert alice.delete(f"/api/v1/datasets/{dataset['id']}/").status_code == 204


# --- preview and download ----------------------------------------------------------------------
def test_preview_returns_the_first_rows(api_as):
    bob = api_as("bob")
    dataset = upload(bob).json()
    body = bob.get(f"/api/v1/datasets/{dataset['id']}/preview/?limit=2").json()
    assert body["columns"] == ["region", "units", "price", "returned", "sold_on"]
    assert body["rows"] == [["north", "10", "2.5", "no", "2024-01-03"],
                            ["south", "7", "3.0", "yes", "2024-01-04"]]
    assert bob.get(f"/api/v1/datasets/{dataset['id']}/preview/?limit=x").status_code == 400


def test_download_returns_the_original_bytes(api_as):
    bob = api_as("bob")
    dataset = upload(bob).json()
    response = bob.get(f"/api/v1/datasets/{dataset['id']}/download/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == SALES
    assert response["Content-Disposition"] == 'attachment; filename="sales.csv"'


def test_a_canary_in_an_upload_is_nowhere_in_the_storage_folder(api_as, acme):
    canary = b"CANARY-7f3a9c-DO-NOT-LEAK"
    bob = api_as("bob")
    response = upload(bob, b"secret,n\n" + canary + b",1\n" + canary + b",2\n")
    assert response.status_code == 201
    files = stored_files(acme)
    assert files
    for path in settings.PORTAL_STORAGE_DIR.rglob("*"):
        if path.is_file():
            assert canary not in path.read_bytes(), path
    # ...and it still reads back.
    body = bob.get(f"/api/v1/datasets/{response.json()['id']}/preview/").json()
    assert body["rows"][0][0] == canary.decode()


def test_one_flipped_byte_gives_a_clear_integrity_error_on_download(api_as, acme):
    bob = api_as("bob")
    dataset = upload(bob, SALES * 3).json()
    with tenant_context(acme):
        object_id = str(Dataset.objects.get(pk=dataset["id"]).object_id)
    path = next(p for p in stored_files(acme) if object_id in p.name and "datasets" in str(p))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    response = bob.get(f"/api/v1/datasets/{dataset['id']}/download/")
    assert response.status_code == 500
    assert "integrity" in response.json()["detail"].lower()
