"""Schemathesis over every operation of the OpenAPI schema: the schema and the API agree.

The fuzzer (a pinned version, all its default checks, a fixed seed, bounded examples and time)
sends generated requests, valid and invalid, over loopback HTTP to the real app as Alice (admin
of acme, a write token), and checks every answer against the schema served at /api/schema/: no
server error, only documented status codes and content types, bodies that validate, invalid
input refused, authentication required. It prints its totals.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import psycopg
import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections, transaction
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema
from schemathesis.engine.statistic import Statistic

from tests import factories
from tests.mlcore.conftest import churn_csv, run_jobs, upload_dataset

pytestmark = [pytest.mark.django_db, pytest.mark.slow, pytest.mark.fuzz]

SEED = 20261207
MAX_EXAMPLES = 10
MAX_SECONDS = 150
# What a request the schema calls valid may be answered (positive_data_acceptance): schemathesis's
# default, plus 413 and 422, which the contract gives to valid input the stored data cannot
# satisfy (a target column the dataset lacks, rows missing the model's columns, a plan limit),
# and the answers of conditional requests: any If-Match other than the object's ETag is a 412,
# an If-None-Match naming it (or "*") a 304.
ACCEPTED = ["2xx", "304", "401", "403", "404", "409", "412", "413", "422", "429", "5xx"]
# What a request the schema calls invalid may be answered (negative_data_rejection): schemathesis's
# default, plus 412: a PATCH or DELETE whose If-Match is stale is refused before its body is read
# (RFC 9110 13.2.2: preconditions are evaluated before the request content is processed).
REJECTED = ["400", "401", "403", "404", "405", "406", "409", "412", "415", "422", "428", "429", "5xx"]


@contextmanager
def connection_kept():
    """No recycling of the database connection around a request: the test's transaction must
    outlive every request (Django's test client does the same)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


class InTransactionApp:
    """Django's own WSGI handler, inside the test's transaction.

    The server thread is handed the test's connection, as Django's LiveServerThread does for
    SQLite in memory; the server answers one request at a time, so only one thread uses it. The
    app sees the test's rows, and everything it writes is rolled back with the test. Each request
    runs in its own savepoint, so a request whose statement fails leaves the next one a usable
    transaction, as in production, where each request is its own transaction.
    """

    def __init__(self):
        self.handler = WSGIHandler()
        self.connection = connections[DEFAULT_DB_ALIAS]

    def __call__(self, environ, start_response):
        connections[DEFAULT_DB_ALIAS] = self.connection
        savepoint = transaction.atomic()
        savepoint.__enter__()
        with connection_kept():
            response = self.handler(environ, start_response)
        return ClosingKept(response, savepoint, self.connection)


class ClosingKept:
    """The response's iterable (streamed bodies read the database too); the server's close()
    (request_finished) keeps the connection and ends the request's savepoint."""

    def __init__(self, response, savepoint, connection):
        self.response, self.savepoint, self.connection = response, savepoint, connection

    def __iter__(self):
        return iter(self.response)

    def close(self):
        try:
            with connection_kept():
                self.response.close()
        finally:
            status = self.connection.connection.info.transaction_status
            if status == psycopg.pq.TransactionStatus.INERROR:
                self.connection.needs_rollback = True
            self.savepoint.__exit__(None, None, None)


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


@contextmanager
def loopback_server():
    """The app on 127.0.0.1 (a free port), served from a thread, one request at a time."""
    app = InTransactionApp()
    app.connection.inc_thread_sharing()
    server = make_server("127.0.0.1", 0, app, server_class=WSGIServer, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        app.connection.dec_thread_sharing()


def fuzz_config(*, base_url: str, host: str, token: str) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict({
        "seed": SEED,
        "max-time": MAX_SECONDS,
        "base-url": base_url,
        "headers": {"Authorization": f"Bearer {token}", "Host": host},
        "generation": {"max-examples": MAX_EXAMPLES},
        "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED},
                   "negative_data_rejection": {"expected-statuses": REJECTED}},
        "operations": [
            # The grantee's role and membership are rows, not schema: a grant an auditor cannot
            # hold, or to a non-member, is a 400 by the contract (docs/api.md "Grants list").
            # The same for the last admin (who cannot be demoted or removed) and member limits
            # tighter than the workspace's own (tests/tenants/test_apis.py).
            {"include-path-regex": "/(share|members/[^/]+)/$", "checks": {
                "positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "400"]},
                "negative_data_rejection": {"expected-statuses": REJECTED}}},
            # A file's contents and the names of text encodings are not schema either: a file
            # that is no CSV/TSV/Parquet, or an unknown encoding, is a 400 naming the field.
            {"include-path": "/api/v1/datasets/", "include-method": "POST", "checks": {
                "positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "400"]}}},
        ],
        "cache": {"enabled": False},
    })


def run_schemathesis(base_url: str, config: SchemathesisConfig, host: str) -> dict:
    schema = schemathesis.openapi.from_url(f"{base_url}/api/schema/?format=json", config=config,
                                           headers={"Host": host})
    statistic = Statistic()
    errors: list[events.NonFatalError] = []
    finished = None
    phases: dict[str, str] = {}
    for event in from_schema(schema).execute():
        if isinstance(event, events.PhaseFinished):
            phases[event.phase.name.value] = event.status.value
        elif isinstance(event, events.ScenarioFinished) and event.is_test_scenario:
            statistic.on_scenario_finished(event.recorder)
        elif isinstance(event, events.NonFatalError):
            errors.append(event)
        elif isinstance(event, events.FatalError):
            raise event.exception
        elif isinstance(event, events.EngineFinished):
            finished = event
            if event.failures:
                statistic.record_run_check_failures(event.failures, label="run")
    return {"operations": len(list(schema.get_all_operations())), "statistic": statistic,
            "errors": errors, "finished": finished, "phases": phases}


def report(outcome: dict, elapsed: float) -> None:
    statistic = outcome["statistic"]
    print(f"\nschemathesis {schemathesis.__version__} (seed {SEED}, max-examples {MAX_EXAMPLES}): "
          f"{outcome['operations']} operations, {len(statistic.tested_operations)} tested, "
          f"{statistic.total_cases} test cases, {statistic.total_failures} failures, "
          f"{len(outcome['errors'])} errors, stopped: {outcome['finished'].stop_reason}, {elapsed:.1f} s")
    print("phases: " + ", ".join(f"{name} {status}" for name, status in outcome["phases"].items()))
    for label, grouped in statistic.failures.items():
        for group in grouped.values():
            for failure in group.failures:
                print(f"FAIL {label}: {failure.title}: {failure.message[:300]}")
            print(f"    {group.code_sample}")
            if group.response is not None:
                print(f"    -> {group.response.status_code} {group.response.content[:300]!r}")
    for error in outcome["errors"]:
        print(f"ERROR {error.label}: {error.value}")


def test_schemathesis_finds_no_failure_on_any_operation(api_as):
    alice = api_as("alice")
    created = upload_dataset(alice, churn_csv(), filename="churn.csv")
    alice.post("/api/v1/training-jobs/", {"dataset": created["id"], "model_name": "Churn",
                                          "target": "churned", "algorithm": "logistic_regression"},
               format="json")
    run_jobs()
    host = factories.host("acme")
    started = time.monotonic()
    with loopback_server() as base_url:
        outcome = run_schemathesis(base_url, fuzz_config(base_url=base_url, host=host, token=alice.token), host)
    report(outcome, time.monotonic() - started)
    statistic = outcome["statistic"]
    assert len(statistic.tested_operations) == outcome["operations"]
    assert statistic.total_failures == 0
    assert not outcome["errors"]
