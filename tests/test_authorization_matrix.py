"""The authorisation matrix: every route of portal.urls_tenants, for every person, read and write.

The routes are read from the URL configuration, so a new URL is covered without anyone remembering:
a route with no row in MATRIX (and not in PUBLIC) fails `test_every_route_has_a_row`, naming it.
The expected statuses follow the roles table of docs/api.md.

HOW TO ADD A ROW (one per URL name, in MATRIX below):

    "api-datasets": {
        "GET": "401 200 200 200 403 404",
        "POST": ("401 201 201 403 403 404", upload_body),
    },

- The six statuses are, in order: anonymous, Alice (admin of acme), Bob (member), Vera (viewer),
  Audrey (auditor), Charlie (admin of globex, with his own globex credentials). Charlie must get
  404 on every acme route; the test refuses any other value in his column.
- Give at least one reading method (GET) and one writing method (POST, PUT, PATCH or DELETE): for a
  read-only route, what a POST gets (405 for those who may see it, 401/403/404 for the rest).
- A body is a dict, or a function(ctx) -> dict when it needs ids or files (ctx is the Context below).
  API bodies are sent as JSON (multipart when a value is a file), page bodies as form data.
- Ids in the path come from KWARGS, by the kwarg's name (member_id, token_id, ...): add a function
  there when your route has a new one. `"QUERY": "?format=csv"` appends a query string.
- /api/ routes are called with each person's write-scoped bearer token; pages with a session bound
  to acme. Each person's request runs in a savepoint that is rolled back, so Alice's DELETE does not
  change what Bob sees. Run with AUTHZ_MATRIX_SHOW=1 to print the statuses actually returned.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from tests import factories

pytestmark = pytest.mark.django_db

PEOPLE = ("anon", "alice", "bob", "vera", "audrey", "charlie")
SAFE = ("GET", "HEAD", "OPTIONS")
URLCONF = "portal.urls_tenants"

# Routes anyone may use (documented as public in docs/api.md or part of signing in). /healthz
# and /readyz answer in middleware and /static/ is served by WhiteNoise: neither is in the URLconf.
PUBLIC = {
    "login": "the sign-in form",
    "login_two_factor": "the second sign-in step, reached with a password step in the session",
    "login_handoff": "the end of a workspace switch; a one-time ticket in the URL is the credential",
    "password_reset": "forgotten password: anyone may ask for a link",
    "password_reset_done": "page after asking for a reset link",
    "password_reset_confirm": "one-time link from an e-mail; the token in the URL is the credential",
    "password_reset_complete": "page after choosing a new password",
    "api-schema": "OpenAPI schema, public by docs/api.md",
    "api-docs": "interactive API docs, public by docs/api.md",
}


# --- ids in paths and bodies --------------------------------------------------------------------
@dataclass
class Context:
    world: object
    cache: dict = field(default_factory=dict)

    def once(self, key, make):
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]


def _member_id(ctx: Context) -> int:
    from tenants.models import Membership

    return Membership.objects.get(user=ctx.world.bob, tenant=ctx.world.acme).id


def _token_id(ctx: Context) -> int:
    """A token of Vera's: her own to revoke; an admin may revoke it on the page, not in the API."""
    from tenants.services import api_token_create

    return ctx.once("token", lambda: api_token_create(user=ctx.world.vera, tenant=ctx.world.acme,
                                                      name="vera's", days=1)[0].id)


def _export_id(ctx: Context) -> str:
    return str(ctx.once("export", lambda: factories.audit_export_done(ctx.world.acme,
                                                                      ctx.world.audrey).id))


def _bob_api(ctx: Context):
    return ctx.once("bob-api", lambda: factories.token_client(ctx.world.bob, ctx.world.acme))


def _dataset_id(ctx: Context) -> int:
    """Bob's own dataset, shared with nobody: owners and admins in, the rest out."""
    from tests.mlcore.conftest import churn_csv, upload_dataset

    return ctx.once("dataset", lambda: upload_dataset(_bob_api(ctx), churn_csv(120))["id"])


def _training_body(ctx: Context) -> dict:
    return {"dataset": _dataset_id(ctx), "model_name": "Matrix", "target": "churned",
            "algorithm": "logistic_regression"}


def _trained(ctx: Context) -> dict:
    """Bob's model, trained in this process: {model, model_version, version}."""
    from tests.mlcore.conftest import run_jobs

    def train():
        job = _bob_api(ctx).post("/api/v1/training-jobs/", _training_body(ctx), format="json").json()
        run_jobs("training")
        return _bob_api(ctx).get(f"/api/v1/jobs/{job['id']}/").json()["result"]

    return ctx.once("trained", train)


def _prediction_body(ctx: Context) -> dict:
    return {"model": _trained(ctx)["model"], "dataset": _dataset_id(ctx)}


def _job_id(ctx: Context) -> int:
    """A finished batch prediction job of Bob's (it has a result, errors file and receipt)."""
    from tests.mlcore.conftest import run_jobs

    def score():
        job = _bob_api(ctx).post("/api/v1/prediction-jobs/", _prediction_body(ctx), format="json").json()
        run_jobs("prediction")
        return job["id"]

    return ctx.once("job", score)


SEARCH_BODY = {"target": "churned", "budget_seconds": 60, "budget_cpu_seconds": 30}


def _search_id(ctx: Context) -> int:
    """A model search of Bob's, queued (its trials are not needed to reach its routes)."""
    return ctx.once("search", lambda: _bob_api(ctx).post(
        "/api/v1/searches/", {"dataset": _dataset_id(ctx), **SEARCH_BODY}, format="json").json()["id"])


def _webhook(ctx: Context):
    """Alice's endpoint on a public address (nothing is sent: tests never commit their queues)."""
    from tenants.webhooks.services import endpoint_create

    return ctx.once("webhook", lambda: endpoint_create(tenant=ctx.world.acme, user=ctx.world.alice,
                                                       url=WEBHOOK_URL, events=["job.failed"])[0])


def _webhook_delivery_id(ctx: Context) -> int:
    from tenants.webhooks.services import endpoint_send_test

    return ctx.once("webhook-delivery", lambda: endpoint_send_test(
        tenant=ctx.world.acme, endpoint=_webhook(ctx), user=ctx.world.alice).id)


WEBHOOK_URL = "https://93.184.215.14/hook"
WEBHOOK_BODY = {"url": WEBHOOK_URL, "events": ["job.failed"]}


ONE_ROW = {"rows": [{"tenure": 3, "monthly": 50.0, "plan": "basic", "autopay": "yes"}]}


def _schedule_body(ctx: Context) -> dict:
    return {"action": "score", "dataset": _dataset_id(ctx), "model": _trained(ctx)["model"], "frequency": "daily"}


def _schedule_id(ctx: Context) -> int:
    """Bob's schedule scoring his own dataset with his own model."""
    return ctx.once("schedule", lambda: _bob_api(ctx).post("/api/v1/schedules/", _schedule_body(ctx),
                                                           format="json").json()["id"])


KWARGS = {
    "member_id": _member_id,
    "token_id": _token_id,
    "export_id": _export_id,
    "dataset_id": _dataset_id,
    "job_id": _job_id,
    "search_id": _search_id,
    "slug": lambda ctx: "globex",  # a workspace none of acme's people belong to (Dana does)
    "model_id": lambda ctx: _trained(ctx)["model"],
    "version_id": lambda ctx: _trained(ctx)["model_version"],
    "webhook_id": lambda ctx: _webhook(ctx).id,
    "delivery_id": _webhook_delivery_id,
    "schedule_id": _schedule_id,
}


# --- the table ----------------------------------------------------------------------------------
#                      anon alice bob vera audrey charlie
MATRIX: dict[str, dict] = {
    # tenants: pages
    "logout": {"GET": "405 405 405 405 405 404", "POST": "302 302 302 302 302 404"},
    "home": {"GET": "302 200 200 200 200 404", "POST": "302 200 200 200 200 404"},
    "workspace_switch": {"GET": "405 405 405 405 405 404", "POST": "302 404 404 404 404 404"},
    "password_change": {"GET": "302 200 200 200 200 404",
                        "POST": ("302 200 200 200 200 404", {"old_password": "wrong"})},
    "members": {"GET": "302 200 403 403 403 404",
                "POST": ("302 302 403 403 403 404", {"email": "erin@acme.test", "role": "viewer"})},
    "member_role": {"GET": "405 405 405 405 405 404",
                    "POST": ("302 302 403 403 403 404", {"role": "viewer"})},
    "member_remove": {"GET": "302 200 403 403 403 404", "POST": "302 302 403 403 403 404"},
    "two_factor": {"GET": "302 200 200 200 200 404",
                   "POST": ("302 400 400 400 400 404", {"code": "000000"})},
    # Nobody here has two-factor on, so everyone is sent to turn it on first.
    "recovery_codes": {"GET": "302 302 302 302 302 404",
                       "POST": ("302 302 302 302 302 404", {"code": "000000"})},
    "notification_settings": {"GET": "302 200 200 200 200 404",
                              "POST": ("302 302 302 302 302 404", {"notify_job_emails": "on"})},
    "tokens": {"GET": "302 200 200 200 200 404",
               "POST": ("302 200 200 200 200 404", {"name": "ci", "scope": "read",
                                                    "expires_in_days": 1})},
    "token_revoke": {"GET": "405 405 405 405 405 404", "POST": "302 302 404 302 404 404"},
    "security_settings": {"GET": "302 200 403 403 403 404",
                          "POST": ("302 302 403 403 403 404", {"require_admin_2fa": ""})},
    "audit": {"GET": "302 200 403 403 200 404", "POST": "405 405 405 405 405 404"},
    "usage": {"GET": "302 200 200 200 200 404", "POST": "302 200 200 200 200 404"},
    "usage_export": {"GET": "302 200 200 200 200 404", "POST": "302 200 200 200 200 404"},
    "member_limits": {"GET": "302 200 403 403 403 404", "POST": "302 400 403 403 403 404"},
    "audit_verify": {"GET": "405 405 405 405 405 404", "POST": "302 302 403 403 302 404"},
    "webhooks": {"GET": "302 200 403 403 403 404",
                 "POST": ("302 200 403 403 403 404", {"url": WEBHOOK_URL, "events": "job.failed"})},
    "webhook_detail": {"GET": "302 200 403 403 403 404", "POST": "405 405 405 405 405 404"},
    "webhook_toggle": {"GET": "405 405 405 405 405 404", "POST": "302 302 403 403 403 404"},
    "webhook_delete": {"GET": "405 405 405 405 405 404", "POST": "302 302 403 403 403 404"},
    "webhook_test": {"GET": "405 405 405 405 405 404", "POST": "302 302 403 403 403 404"},
    "webhook_delivery_replay": {"GET": "405 405 405 405 405 404", "POST": "302 302 403 403 403 404"},
    # tenants: API
    "api-me": {"GET": "401 200 200 200 200 404", "POST": "401 405 405 403 403 404"},
    "api-members": {"GET": "401 200 403 403 403 404",
                    "POST": ("401 201 403 403 403 404", {"email": "erin@acme.test", "role": "viewer"})},
    "api-member": {"GET": "401 200 403 403 403 404",
                   "PATCH": ("401 200 403 403 403 404", {"role": "viewer"}),
                   "DELETE": "401 204 403 403 403 404"},
    "api-usage": {"GET": "401 200 200 200 200 404", "POST": "401 405 405 403 403 404"},
    "api-tokens": {"GET": "401 200 200 200 200 404",
                   "POST": ("401 201 201 201 201 404", {"name": "ci", "scope": "read",
                                                        "expires_in_days": 1})},
    "api-token": {"GET": "401 405 405 405 405 404", "DELETE": "401 404 404 204 404 404"},
    "api-audit-events": {"GET": "401 200 403 403 200 404", "POST": "401 405 403 403 405 404"},
    "api-audit-export": {"QUERY": "?format=jsonl",
                         "GET": "401 200 403 403 200 404", "POST": "401 405 403 403 405 404"},
    "api-audit-manifest": {"GET": "401 200 403 403 200 404", "POST": "401 405 403 403 405 404"},
    "api-signing-key": {"GET": "401 200 200 200 200 404", "POST": "401 405 405 405 405 404"},
    "api-webhooks": {"GET": "401 200 403 403 403 404", "POST": ("401 201 403 403 403 404", WEBHOOK_BODY)},
    "api-webhook": {"GET": "401 200 403 403 403 404", "PATCH": ("401 200 403 403 403 404", {"active": False}),
                    "DELETE": "401 204 403 403 403 404"},
    "api-webhook-deliveries": {"GET": "401 200 403 403 403 404", "POST": "401 405 403 403 403 404"},
    "api-webhook-test": {"GET": "401 405 403 403 403 404", "POST": "401 202 403 403 403 404"},
    "api-webhook-delivery-replay": {"GET": "401 405 403 403 403 404", "POST": "401 202 403 403 403 404"},
    # mlcore: pages (ids are Bob's own dataset, job, model and version, shared with nobody)
    "datasets": {"GET": "302 200 200 200 403 404", "POST": "302 200 200 200 403 404"},
    "dataset_upload": {"GET": "302 200 200 403 403 404", "POST": "302 400 400 403 403 404"},
    "dataset_detail": {"GET": "302 200 200 404 403 404", "POST": "302 400 400 404 403 404"},
    "dataset_version_upload": {"GET": "302 200 200 403 403 404", "POST": "302 400 400 403 403 404"},
    "dataset_download": {"GET": "302 200 200 404 403 404", "POST": "302 200 200 404 403 404"},
    "dataset_relationships": {"GET": "302 200 200 404 403 404", "POST": "405 405 405 405 405 404"},
    "dataset_share": {"GET": "302 200 200 403 403 404",
                      "POST": ("302 302 302 403 403 404", {"email": "vera@acme.test", "permission": "view"})},
    "dataset_unshare": {"GET": "405 405 405 405 405 404",
                        "POST": ("302 302 302 403 403 404", {"email": "vera@acme.test"})},
    "dataset_delete": {"GET": "302 200 200 403 403 404", "POST": "302 302 302 403 403 404"},
    "models": {"GET": "302 200 200 200 403 404", "POST": "302 200 200 200 403 404"},
    "train": {"GET": "302 200 200 403 403 404", "POST": "302 422 422 403 403 404"},
    "model_detail": {"GET": "302 200 200 404 403 404", "POST": "302 200 200 404 403 404"},
    "model_compare": {"GET": "302 200 200 404 403 404", "POST": "405 405 405 405 405 404"},
    "model_share": {"GET": "302 200 200 403 403 404",
                    "POST": ("302 302 302 403 403 404", {"email": "vera@acme.test", "permission": "view"})},
    "model_delete": {"GET": "302 200 200 403 403 404", "POST": "302 302 302 403 403 404"},
    "model_version": {"GET": "302 200 200 404 403 404", "POST": "302 200 200 404 403 404"},
    # GET is the confirmation step (this version is already in production: back to the model)
    "model_version_promote": {"GET": "302 302 302 403 403 404", "POST": "302 302 302 403 403 404"},
    "model_version_delete": {"GET": "405 405 405 405 405 404", "POST": "302 302 302 403 403 404"},
    "model_version_threshold": {"GET": "405 405 405 405 405 404",
                                "POST": ("302 302 302 403 403 404", {"threshold": "0.4"})},
    "search_start": {"GET": "302 200 200 403 403 404", "POST": ("302 302 302 403 403 404", SEARCH_BODY)},
    "search_detail": {"GET": "302 200 200 403 403 404", "POST": "302 200 200 403 403 404"},
    "search_board": {"GET": "302 200 200 403 403 404", "POST": "302 200 200 403 403 404"},
    "search_cancel": {"GET": "405 405 405 405 405 404", "POST": "302 302 302 403 403 404"},
    "jobs": {"GET": "302 200 200 403 403 404", "POST": "302 200 200 403 403 404"},
    "job_detail": {"GET": "302 200 200 403 403 404", "POST": "302 200 200 403 403 404"},
    "job_status": {"GET": "302 200 200 403 403 404", "POST": "302 200 200 403 403 404"},
    "job_cancel": {"GET": "405 405 405 405 405 404", "POST": "302 302 302 403 403 404"},
    "prediction_download": {"GET": "302 200 200 403 403 404", "POST": "302 200 200 403 403 404"},
    "prediction_errors": {"GET": "302 200 200 403 403 404", "POST": "302 200 200 403 403 404"},
    "prediction_receipt": {"GET": "302 200 200 403 403 404", "POST": "302 405 405 403 403 404"},
    "schedules": {"GET": "302 200 200 403 403 404", "POST": "302 400 400 403 403 404"},
    "schedule_detail": {"GET": "302 200 200 403 403 404", "POST": "405 405 405 405 405 404"},
    "schedule_pause": {"GET": "405 405 405 405 405 404", "POST": "302 302 302 403 403 404"},
    "schedule_resume": {"GET": "405 405 405 405 405 404", "POST": "302 302 302 403 403 404"},
    "schedule_delete": {"GET": "405 405 405 405 405 404", "POST": "302 302 302 403 403 404"},
    "predict": {"GET": "302 200 200 403 403 404", "POST": "302 422 422 403 403 404"},
    "predict_upload": {"GET": "302 405 405 403 403 404", "POST": "302 400 400 403 403 404"},
    "try_it": {"GET": "405 405 405 405 405 404", "POST": "302 400 400 403 403 404"},
    # mlcore: API
    "api-datasets": {"GET": "401 200 200 200 403 404", "POST": "401 400 400 403 403 404"},
    "api-dataset": {"GET": "401 200 200 404 403 404", "PATCH": ("401 200 200 403 403 404", {"name": "x"}),
                    "DELETE": "401 204 204 403 403 404"},
    "api-dataset-versions": {"GET": "401 200 200 404 403 404", "POST": "401 400 400 403 403 404"},
    "api-dataset-preview": {"GET": "401 200 200 404 403 404", "POST": "401 405 405 403 403 404"},
    "api-dataset-download": {"GET": "401 200 200 404 403 404", "POST": "401 405 405 403 403 404"},
    "api-dataset-share": {"GET": "401 200 200 404 403 404",
                          "POST": ("401 201 201 403 403 404", {"email": "vera@acme.test", "permission": "view"}),
                          "DELETE": ("401 400 400 403 403 404", {"email": "vera@acme.test"})},
    "api-training-jobs": {"GET": "401 405 405 405 403 404",
                          "POST": ("401 202 202 403 403 404", _training_body)},
    "api-searches": {"GET": "401 405 405 405 403 404",
                     "POST": ("401 202 202 403 403 404", lambda ctx: {"dataset": _dataset_id(ctx), **SEARCH_BODY})},
    "api-search": {"GET": "401 200 200 403 403 404", "POST": "401 405 405 403 403 404"},
    "api-search-cancel": {"GET": "401 405 405 405 403 404", "POST": "401 202 202 403 403 404"},
    "api-jobs": {"GET": "401 200 200 403 403 404", "POST": "401 405 405 403 403 404"},
    "api-job": {"GET": "401 200 200 403 403 404", "POST": "401 405 405 403 403 404"},
    "api-job-cancel": {"GET": "401 405 405 405 403 404", "POST": "401 202 202 403 403 404"},
    "api-job-result": {"GET": "401 200 200 403 403 404", "POST": "401 405 405 403 403 404"},
    "api-job-errors": {"GET": "401 200 200 403 403 404", "POST": "401 405 405 403 403 404"},
    "api-job-receipt": {"GET": "401 200 200 403 403 404", "POST": "401 405 405 403 403 404"},
    "api-prediction-jobs": {"GET": "401 405 405 405 403 404",
                            "POST": ("401 202 202 403 403 404", _prediction_body)},
    "api-model-predict": {"GET": "401 405 405 405 403 404", "POST": ("401 200 200 403 403 404", ONE_ROW)},
    "api-schedules": {"GET": "401 200 200 403 403 404", "POST": ("401 201 201 403 403 404", _schedule_body)},
    "api-schedule": {"GET": "401 200 200 403 403 404",
                     "PATCH": ("401 200 200 403 403 404", {"frequency": "cron", "cron": "0 6 * * 1"}),
                     "DELETE": "401 204 204 403 403 404"},
    "api-schedule-pause": {"GET": "401 405 405 405 403 404", "POST": "401 200 200 403 403 404"},
    "api-schedule-resume": {"GET": "401 405 405 405 403 404", "POST": "401 200 200 403 403 404"},
    "api-schedule-runs": {"GET": "401 200 200 403 403 404", "POST": "401 405 405 403 403 404"},
    "api-models": {"GET": "401 200 200 200 403 404", "POST": "401 405 405 403 403 404"},
    "api-model": {"GET": "401 200 200 404 403 404", "PATCH": ("401 200 200 403 403 404", {"name": "x"}),
                  "DELETE": "401 204 204 403 403 404"},
    "api-model-share": {"GET": "401 200 200 404 403 404",
                        "POST": ("401 201 201 403 403 404", {"email": "vera@acme.test", "permission": "view"}),
                        "DELETE": ("401 400 400 403 403 404", {"email": "vera@acme.test"})},
    "api-model-version": {"GET": "401 200 200 404 403 404", "DELETE": "401 409 409 403 403 404"},
    "api-model-version-monitoring": {"GET": "401 200 200 404 403 404", "POST": "401 405 405 403 403 404"},
    "api-model-version-promote": {"GET": "401 405 405 405 403 404", "POST": "401 200 200 403 403 404"},
    "api-model-version-threshold": {"GET": "401 405 405 405 403 404",
                                    "POST": ("401 200 200 403 403 404", {"threshold": 0.4})},
}


# --- walking the URL configuration ---------------------------------------------------------------
def _walk(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.name


ROUTES = sorted(_walk(get_resolver(URLCONF).url_patterns), key=lambda r: r[0])
CHECKED = [(route, name) for route, name in ROUTES if name not in PUBLIC]


def test_every_route_has_a_row():
    unnamed = [route for route, name in ROUTES if not name]
    missing = [f"{name} (/{route})" for route, name in CHECKED if name and name not in MATRIX]
    assert not unnamed, f"routes without a name cannot be in the matrix: {unnamed}"
    assert not missing, ("routes with no row in tests/test_authorization_matrix.py MATRIX "
                         f"(see how to add one at the top of that file): {', '.join(missing)}")


def test_every_row_is_a_route_and_reads_and_writes():
    names = {name for _, name in ROUTES}
    assert sorted(set(MATRIX) - names) == [], "rows for routes that no longer exist"
    for name, row in MATRIX.items():
        methods = [m for m in row if m != "QUERY"]
        assert any(m in SAFE for m in methods), f"{name}: no reading method"
        assert any(m not in SAFE for m in methods), f"{name}: no writing method"
        for method in methods:
            spec = row[method][0] if isinstance(row[method], tuple) else row[method]
            assert len(spec.split()) == len(PEOPLE), f"{name} {method}: six statuses, please"
            assert spec.split()[-1] == "404", f"{name} {method}: Charlie must get 404 in acme"


def _clients(world, api: bool) -> dict:
    acme, globex = world.acme, world.globex
    if api:
        anon = APIClient(HTTP_HOST=factories.host("acme"))
        people = {n: factories.token_client(getattr(world, n), acme) for n in PEOPLE[1:5]}
        people["charlie"] = factories.token_client(world.charlie, globex, host_slug="acme")
    else:
        anon = Client(HTTP_HOST=factories.host("acme"))
        people = {n: factories.logged_in_client(getattr(world, n), acme) for n in PEOPLE[1:5]}
        people["charlie"] = factories.logged_in_client(world.charlie, globex)
        people["charlie"].defaults["HTTP_HOST"] = factories.host("acme")
    return {"anon": anon, **people}


def _call(client, method: str, url: str, body, api: bool):
    send = getattr(client, method.lower())
    if body is None:
        return send(url)
    if api:
        has_file = any(isinstance(v, SimpleUploadedFile) for v in body.values())
        return send(url, body, format="multipart" if has_file else "json")
    return send(url, body)


@pytest.mark.parametrize(("route", "name"), CHECKED, ids=[name or route for route, name in CHECKED])
def test_each_person_gets_the_expected_status(world, route, name):
    assert name in MATRIX, f"route {name} (/{route}) has no row in MATRIX: add one (see the top of this file)"
    row = MATRIX[name]
    ctx = Context(world=world)
    pattern = next(p for p in _walk(get_resolver(URLCONF).url_patterns) if p[1] == name)
    kwargs = {k: KWARGS[k](ctx) for k in _kwarg_names(pattern[0])}
    url = reverse(name, urlconf=URLCONF, kwargs=kwargs) + row.get("QUERY", "")
    api = url.startswith("/api/")
    clients = _clients(world, api)
    wrong, seen = [], {}
    for method in (m for m in row if m != "QUERY"):
        spec, body = row[method] if isinstance(row[method], tuple) else (row[method], None)
        got = []
        for person, expected in zip(PEOPLE, spec.split(), strict=True):
            data = body(ctx) if callable(body) else body
            savepoint = transaction.savepoint()
            try:
                status = _call(clients[person], method, url, data, api).status_code
            finally:
                transaction.savepoint_rollback(savepoint)
            got.append(str(status))
            if str(status) != expected:
                wrong.append(f"{method} {url} as {person}: expected {expected}, got {status}")
        seen[method] = " ".join(got)
    if os.environ.get("AUTHZ_MATRIX_SHOW"):
        print(f"\n{name!r}: {seen}")
    assert not wrong, "\n".join(wrong)


def _kwarg_names(route: str) -> list[str]:
    import re

    return re.findall(r"<(?:\w+:)?(\w+)>", route)
