"""REST API v1 of tenants/apis.py: me, members, usage, tokens; the API base and its errors."""

import pytest
from rest_framework.test import APIClient

from tests import factories

pytestmark = pytest.mark.django_db


def test_me_tells_who_where_and_as_what(api_as):
    response = api_as("vera").get("/api/v1/me/")
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["email"] == "vera@acme.test"
    assert body["tenant"] == {"slug": "acme", "name": "Acme Corp"}
    assert body["role"] == "viewer"


def test_dana_is_a_member_in_each_of_her_tenants(api_as):
    assert api_as("dana", "acme").get("/api/v1/me/").json()["tenant"]["slug"] == "acme"
    assert api_as("dana", "globex").get("/api/v1/me/").json()["tenant"]["slug"] == "globex"


def test_an_anonymous_call_gets_401_problem_details():
    response = APIClient(HTTP_HOST="acme.localhost").get("/api/v1/me/")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert set(body) >= {"type", "title", "status", "detail"}
    assert body["status"] == 401


def test_a_bad_token_gets_401():
    client = APIClient(HTTP_HOST="acme.localhost")
    client.credentials(HTTP_AUTHORIZATION="Bearer mlp_not-a-real-token")
    assert client.get("/api/v1/me/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION="Basic Zm9vOmJhcg==")
    assert client.get("/api/v1/me/").status_code == 401


def test_a_token_of_globex_gets_404_on_acme(world):
    charlie = factories.token_client(world.charlie, world.globex, host_slug="acme")
    assert charlie.get("/api/v1/me/").status_code == 404
    assert charlie.get("/api/v1/members/").status_code == 404
    # Dana's globex token is not an acme token either, though she is a member of acme.
    dana = factories.token_client(world.dana, world.globex, host_slug="acme")
    assert dana.get("/api/v1/me/").status_code == 404


def test_a_revoked_token_is_refused_on_its_very_next_request(world):
    from tenants.models import ApiToken
    from tenants.services import api_token_revoke

    client = factories.token_client(world.bob, world.acme)
    assert client.get("/api/v1/me/").status_code == 200
    api_token_revoke(token=ApiToken.objects.get(user=world.bob), actor=world.bob)
    assert client.get("/api/v1/me/").status_code == 401


def test_an_expired_token_is_refused(world):
    from datetime import timedelta

    from django.utils import timezone

    from tenants.models import ApiToken

    client = factories.token_client(world.bob, world.acme)
    assert client.get("/api/v1/me/").status_code == 200
    ApiToken.objects.filter(user=world.bob).update(expires_at=timezone.now() - timedelta(seconds=1))
    from tenants.accounts.access import forget_cached_credentials

    forget_cached_credentials()
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert "expired" in response.json()["detail"] or "revoked" in response.json()["detail"]


def test_a_cached_token_expires_without_any_database_change(world, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from tenants.models import ApiToken

    client = factories.token_client(world.bob, world.acme)
    ApiToken.objects.filter(user=world.bob).update(expires_at=timezone.now() + timedelta(seconds=60))
    assert client.get("/api/v1/me/").status_code == 200  # now cached in this process
    later = timezone.now() + timedelta(seconds=120)
    monkeypatch.setattr("tenants.accounts.access.timezone.now", lambda: later)
    assert client.get("/api/v1/me/").status_code == 401


def test_a_deactivated_users_token_stops_at_once(world):
    from tenants.services import user_deactivate

    client = factories.token_client(world.bob, world.acme)
    assert client.get("/api/v1/me/").status_code == 200
    user_deactivate(user=world.bob, actor=world.alice)
    assert client.get("/api/v1/me/").status_code == 401


def test_a_read_token_cannot_write(api_as):
    client = api_as("alice", scope="read")
    response = client.post("/api/v1/members/", {"email": "x@acme.test", "role": "member"}, format="json")
    assert response.status_code == 403
    assert "read scope" in response.json()["detail"]


def test_alice_lists_members_paginated(api_as):
    response = api_as("alice").get("/api/v1/members/?page_size=2")
    body = response.json()
    assert body["count"] == 5
    assert len(body["results"]) == 2
    assert body["next"].endswith("page=2&page_size=2")
    assert set(body["results"][0]) >= {"id", "email", "role", "limits"}


@pytest.mark.parametrize("name", ["bob", "vera", "audrey"])
def test_non_admins_get_403_from_the_members_api(api_as, name):
    client = api_as(name)
    assert client.get("/api/v1/members/").status_code == 403
    response = client.post("/api/v1/members/", {"email": "x@acme.test", "role": "member"}, format="json")
    assert response.status_code == 403


def test_alice_adds_a_member_through_the_api(api_as, outbox):
    response = api_as("alice").post("/api/v1/members/", {"email": "Erin@Acme.test", "role": "viewer"},
                                    format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "erin@acme.test"
    assert body["role"] == "viewer"
    assert "set_password_url" not in body  # the invitee's credential: e-mailed to them only
    assert outbox[0].to == ["erin@acme.test"]
    assert "/account/set-password/" in outbox[0].body


def test_adding_an_existing_member_is_a_409(api_as):
    response = api_as("alice").post("/api/v1/members/", {"email": "bob@acme.test", "role": "viewer"},
                                    format="json")
    assert response.status_code == 409
    assert "already a member" in response.json()["detail"]


def test_validation_errors_list_each_field(api_as):
    response = api_as("alice").post("/api/v1/members/", {"email": "nope", "role": "boss"}, format="json")
    assert response.status_code == 400
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"email", "role"}


def test_alice_changes_a_role_and_cannot_demote_herself_as_last_admin(api_as, world):
    from tenants.models import Membership

    client = api_as("alice")
    bob = Membership.objects.get(user=world.bob, tenant=world.acme)
    assert client.patch(f"/api/v1/members/{bob.id}/", {"role": "viewer"}, format="json").json()["role"] == "viewer"
    me = Membership.objects.get(user=world.alice, tenant=world.acme)
    response = client.patch(f"/api/v1/members/{me.id}/", {"role": "member"}, format="json")
    assert response.status_code == 400
    assert "at least one admin" in response.json()["detail"]


def test_a_bad_limit_leaves_the_role_unchanged(api_as, world):
    from tenants.limits.quotas import effective_limits
    from tenants.models import AuditEvent, Membership

    bob = Membership.objects.get(user=world.bob, tenant=world.acme)
    too_much = effective_limits(world.acme)["cpu_seconds"] + 1
    response = api_as("alice").patch(f"/api/v1/members/{bob.id}/",
                                     {"role": "viewer", "limits": {"cpu_seconds": too_much}}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "cpu_seconds"
    bob.refresh_from_db()
    assert bob.role == "member"
    assert bob.limits == {}
    assert not AuditEvent.objects.filter(tenant_id=world.acme.id, action="member.role_change").exists()


def test_alice_changes_role_and_limits_in_one_call(api_as, world):
    from tenants.models import Membership

    bob = Membership.objects.get(user=world.bob, tenant=world.acme)
    response = api_as("alice").patch(f"/api/v1/members/{bob.id}/",
                                     {"role": "viewer", "limits": {"cpu_seconds": 10}}, format="json")
    assert response.status_code == 200
    assert response.json()["role"] == "viewer"
    assert response.json()["limits"] == {"cpu_seconds": 10}
    bob.refresh_from_db()
    assert (bob.role, bob.limits) == ("viewer", {"cpu_seconds": 10})


def test_removing_a_member_revokes_their_tokens(api_as, world):
    from tenants.models import Membership

    bob_client = api_as("bob")
    assert bob_client.get("/api/v1/me/").status_code == 200
    bob = Membership.objects.get(user=world.bob, tenant=world.acme)
    assert api_as("alice").delete(f"/api/v1/members/{bob.id}/").status_code == 204
    assert bob_client.get("/api/v1/me/").status_code == 401


def test_a_globex_member_id_is_404_for_alice(api_as, world):
    from tenants.models import Membership

    charlie = Membership.objects.get(user=world.charlie, tenant=world.globex)
    client = api_as("alice")
    assert client.get(f"/api/v1/members/{charlie.id}/").status_code == 404
    assert client.delete(f"/api/v1/members/{charlie.id}/").status_code == 404


@pytest.mark.parametrize("name", ["alice", "bob", "vera", "audrey"])
def test_every_member_reads_usage_with_the_same_keys_in_limits_and_usage(api_as, name):
    body = api_as(name).get("/api/v1/usage/").json()
    assert body["plan"] == "team"
    keys = {"storage_bytes", "datasets", "model_versions", "concurrent_jobs", "cpu_seconds",
            "predicted_rows", "api_requests_per_minute"}
    assert set(body["usage"]) == keys
    assert keys | {"rows_per_dataset", "columns_per_dataset", "memory_per_job_bytes",
                   "wall_seconds_per_job"} <= set(body["limits"])
    assert body["period_start"].endswith("T00:00:00Z")


def test_tokens_api_creates_lists_and_revokes_own_tokens(api_as, world):
    client = api_as("vera")
    created = client.post("/api/v1/tokens/", {"name": "laptop", "scope": "read", "expires_in_days": 7},
                          format="json")
    assert created.status_code == 201
    body = created.json()
    assert body["token"].startswith("mlp_")
    assert set(body) == {"id", "name", "scope", "expires_at", "token"}
    listed = client.get("/api/v1/tokens/").json()["results"]
    assert all("token" not in row and "digest" not in row for row in listed)
    assert body["id"] in [row["id"] for row in listed]

    other = APIClient(HTTP_HOST="acme.localhost")
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert other.get("/api/v1/me/").status_code == 200
    assert client.delete(f"/api/v1/tokens/{body['id']}/").status_code == 204
    assert other.get("/api/v1/me/").status_code == 401


def test_nobody_revokes_someone_elses_token(api_as, world):
    from tenants.models import ApiToken

    bob_client = api_as("bob")
    bob_token = ApiToken.objects.get(user=world.bob)
    assert api_as("vera").delete(f"/api/v1/tokens/{bob_token.id}/").status_code == 404
    assert bob_client.get("/api/v1/me/").status_code == 200


def test_tokens_are_stored_only_as_a_hash(world):
    from tenants.models import ApiToken

    client = factories.token_client(world.bob, world.acme)
    row = ApiToken.objects.get(user=world.bob)
    assert client.token not in (row.digest, row.prefix, row.name)
    assert len(row.digest) == 64


def test_session_api_calls_need_the_csrf_token(world):
    from django.test import Client

    client = Client(HTTP_HOST="acme.localhost", enforce_csrf_checks=True)
    factories.bind_session(client, world.alice, world.acme)
    assert client.get("/api/v1/me/").status_code == 200
    response = client.post("/api/v1/members/", {"email": "x@acme.test", "role": "member"},
                           content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_the_openapi_schema_and_docs_are_served(anon):
    assert anon.get("/api/schema/").status_code == 200
    assert anon.get("/api/docs/").status_code == 200


# --- the API base refuses, at class creation, a subclass that replaces a guard -------------------
@pytest.mark.parametrize("hook", ["authentication_classes", "permission_classes", "get_permissions",
                                  "get_authenticators", "get_queryset", "check_permissions",
                                  "check_object_permissions"])
def test_a_subclass_that_replaces_a_guard_is_refused_when_defined(hook):
    from tenants.web.api import TenantAPI

    with pytest.raises(TypeError, match=hook):
        type("LeakyApi", (TenantAPI,), {hook: []})


def test_the_named_hatch_lets_a_deliberate_replacement_through():
    from tenants.web.api import TenantAPI

    api = type("DocsApi", (TenantAPI,), {"permission_classes": [],
                                         "dangerously_override": ("permission_classes",)})
    assert api.permission_classes == []
    # The hatch is not inherited: a subclass that replaces a guard again must name it itself.
    with pytest.raises(TypeError, match="permission_classes"):
        type("DocsApiChild", (api,), {"permission_classes": []})


def test_an_object_endpoint_must_say_what_each_method_needs():
    from tenants.web.api import ObjectAPI

    with pytest.raises(TypeError, match="post"):
        type("PromoteApi", (ObjectAPI,), {"url_kwarg": "x_id", "post": lambda self, request: None})


def test_an_object_endpoint_must_say_how_its_object_is_found():
    from tenants.web.api import ObjectAPI

    read_api = type("ReadApi", (ObjectAPI,), {"url_kwarg": "x_id", "get": lambda self, request: None})
    with pytest.raises(TypeError, match="resolve"):
        read_api.as_view()
