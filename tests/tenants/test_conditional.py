"""ETags, If-None-Match and If-Match on the API's single objects (tenants/web/conditional.py)."""

from __future__ import annotations

import threading

import pytest
from django_tenants.utils import tenant_context

from tests.mlcore.conftest import churn_csv, upload_dataset


@pytest.fixture
def dataset(api_as):
    return upload_dataset(api_as("bob"), churn_csv(40), filename="churn.csv")


def test_a_detail_read_has_an_etag_and_a_matching_if_none_match_gets_304(api_as, dataset):
    bob = api_as("bob")
    url = f"/api/v1/datasets/{dataset['id']}/"
    first = bob.get(url)
    etag = first["ETag"]
    assert etag.startswith('"') and len(etag) == 34
    assert bob.get(url)["ETag"] == etag  # the same object, the same tag
    cached = bob.get(url, HTTP_IF_NONE_MATCH=etag)
    assert cached.status_code == 304
    assert cached.content == b""
    assert cached["ETag"] == etag
    assert bob.get(url, HTTP_IF_NONE_MATCH=f'"other", W/{etag}').status_code == 304
    assert bob.get(url, HTTP_IF_NONE_MATCH='"other"').status_code == 200
    bob.patch(url, {"description": "changed"}, format="json")
    changed = bob.get(url, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag


def test_two_editors_who_read_the_same_version_cannot_overwrite_each_other(api_as, dataset, acme):
    from mlcore.models import Dataset

    url = f"/api/v1/datasets/{dataset['id']}/"
    alice, bob = api_as("alice"), api_as("bob")
    bob_tag = bob.get(url)["ETag"]
    first = bob.patch(url, {"name": "Bob's name"}, format="json", HTTP_IF_MATCH=bob_tag)
    assert first.status_code == 200
    stale = bob.patch(url, {"name": "Bob again"}, format="json", HTTP_IF_MATCH=bob_tag)
    assert stale.status_code == 412
    assert stale["Content-Type"] == "application/problem+json"
    assert stale.json()["type"] == "/problems/precondition-failed"
    assert bob.delete(url, HTTP_IF_MATCH=bob_tag).status_code == 412
    with tenant_context(acme):
        assert Dataset.objects.get(pk=dataset["id"]).name == "Bob's name"
    # A fresh read writes; "*" writes whatever the version; no If-Match writes as before.
    fresh = bob.get(url)["ETag"]
    assert bob.patch(url, {"name": "Fresh"}, format="json", HTTP_IF_MATCH=fresh).status_code == 200
    assert bob.patch(url, {"name": "Any"}, format="json", HTTP_IF_MATCH="*").status_code == 200
    assert alice.patch(url, {"description": "admin"}, format="json").status_code in (200, 404)
    assert bob.delete(url, HTTP_IF_MATCH=bob.get(url)["ETag"]).status_code == 204


def test_an_admin_changing_a_member_is_conditional_too(api_as):
    alice = api_as("alice")
    members = alice.get("/api/v1/members/").json()["results"]
    url = f"/api/v1/members/{next(m['id'] for m in members if m['email'] == 'bob@acme.test')}/"
    tag = alice.get(url)["ETag"]
    assert alice.patch(url, {"role": "viewer"}, format="json", HTTP_IF_MATCH=tag).status_code == 200
    assert alice.patch(url, {"role": "member"}, format="json", HTTP_IF_MATCH=tag).status_code == 412
    assert alice.get(url).json()["role"] == "viewer"


def test_list_reads_and_file_downloads_carry_no_etag(api_as, dataset):
    bob = api_as("bob")
    assert "ETag" not in bob.get("/api/v1/datasets/")
    assert "ETag" not in bob.get(f"/api/v1/datasets/{dataset['id']}/download/")


def test_concurrent_conditional_writes_let_exactly_one_through(committed, world):
    """Two editors send their write with the same tag at the same moment (own connections)."""
    from django.db import connection

    from tests import factories

    bob = factories.token_client(world.bob, world.acme)
    dataset = upload_dataset(bob, churn_csv(30))
    url = f"/api/v1/datasets/{dataset['id']}/"
    tag = bob.get(url)["ETag"]
    clients = [factories.token_client(world.bob, world.acme) for _ in range(4)]
    answers, barrier = [], threading.Barrier(len(clients))

    def write(client, n):
        try:
            barrier.wait()
            answers.append(client.patch(url, {"name": f"Editor {n}"}, format="json", HTTP_IF_MATCH=tag).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(c, n)) for n, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(answers) == [200, 412, 412, 412]
