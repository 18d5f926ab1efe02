"""Load: many simulated users over many tenants doing the business journey through the REST API.

    .venv/bin/python bench/load.py [--users 50] [--tenants 10] [--seconds 60]
        [--web-workers 3] [--web-threads 4] [--celery-concurrency 2] [--think 0.05]
        [--hard-timeout S] [--quick] [--audit-only] [--audit-rounds 3] [--audit-seconds 5]
        [--audit-connections 16] [--audit-datasets 20]

On a throw-away database (bench/_db.py): TENANTS tenants (team plan) with USERS/TENANTS members
each (an API token per member). The bench starts, and stops by PID, its own gunicorn (gthread) on a
free loopback port and two Celery workers on its own queues (training; prediction + default). Each
tenant's admin first trains one model (logistic regression) and shares it with the whole tenant
("use"), so online predictions can start at once. Then, for --seconds, every user (a thread with
its own keep-alive connection to 127.0.0.1) loops over the journey:

  list datasets; predict online (3 rows) with its newest model (the tenant's seed model at first);
  upload a small CSV (~100 rows, a few kB, distinct per user and round) and train on it (one training
  job in flight per user, polled each round; on success its model is read and used from then on);
  start a batch prediction of its newest dataset (one in flight per user, polled each round; on
  success the CSV result is downloaded); read /usage/; every third round, list models and jobs.

Cross-tenant check, on every response body: each tenant's objects carry its marker `tnNNz` (tenant
slug, dataset and model names, a category column, the class labels, hence every prediction and
every result file), and the owner e-mails are `...@tnNNz.test`; a body with another tenant's marker
is a cross-tenant response. Ids in lists and details (datasets, jobs, models, versions) must be ids
this tenant's own responses created (ids repeat across tenants: one schema each); ids not yet seen
are checked again once the run is over. Online predictions must be this tenant's labels, batch
results must score exactly the dataset's rows with this tenant's labels.

Printed: per endpoint (method + route template) the count, req/s, p50/p95/p99 ms, errors (any
status other than 2xx/3xx, except 429 rate limiting, reported apart; failed jobs and transport
errors count too), then totals, the CPU seconds of the web and worker processes and of this one,
jobs completed, a probe (each tenant's member token on another tenant's host must get 401/403/404),
and "cross-tenant responses: N". Exit code 1 if there were errors or cross-tenant responses.
Then, in the same run, the audited dataset list against a bare DRF list of the same rows
(bench/bare_list/: DRF alone, no routing, token, membership or audit; the tenant's schema fixed on
its connection), both on gunicorn with the same workers and threads: one tenant's admin lists
(page of 50, at least --audit-datasets rows) over --audit-connections keep-alive connections from
two client processes, in --audit-rounds interleaved rounds of --audit-seconds; prints req/s and
p50/p99 and the gunicorn processes' CPU-ms per request, per round and of the median rounds, their ratio (target >= 0.7x), and that the tenant's
chain (verified) holds one access entry per answered audited request. Celery beat runs throughout,
as in production (it moves buffered audit entries into the chains). --audit-only runs just this
comparison (one tenant, no journey).

Bounded: requests time out after 60 s, and after --hard-timeout (default --seconds + 420) a watchdog
stops the bench's processes (exit code 2, or 1 with the figures cut short), the database is dropped.
"""

from __future__ import annotations

import argparse
import base64
import csv
import http.client
import io
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = sys.executable
HTTP_TIMEOUT = 60  # seconds per request: nothing waits longer than this on the server
TRAIN = {"target": "label", "algorithm": "logistic_regression", "features": ["x1", "x2", "x3", "tag"]}


# --- pure helpers (tested in tests/test_bench_load.py) --------------------------------------
def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks (numpy's
    default); nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


MARKER_RE = re.compile(r"(?<![A-Za-z0-9])tn(\d{2})z(?![A-Za-z0-9])")


def marker(tenant: int) -> str:
    """Tenant number -> its marker, also its slug: tn03z."""
    return f"tn{tenant:02d}z"


def foreign_markers(text: str, own: int) -> list[str]:
    """Markers of other tenants found in a response body."""
    return sorted({marker(int(n)) for n in MARKER_RE.findall(text) if int(n) != own})


class Ledger:
    """Ids each tenant's own responses created, by kind, and the checks of responses against them.
    Responses are numbered; the count of cross-tenant responses is the count of numbers flagged."""

    KINDS = ("dataset", "job", "model", "version")

    def __init__(self, tenants: int):
        self.known = {t: {k: set() for k in self.KINDS} for t in range(tenants)}
        self.deferred: list[tuple[int, str, int, str, int]] = []  # (tenant, kind, id, where, response)
        self.violations: list[str] = []
        self.bad: set[int] = set()  # numbers of the cross-tenant responses
        self.usage_seen: dict[int, tuple[int, int]] = {}  # tenant -> (most datasets /usage/ showed, response)
        self.checked = 0
        self.lock = threading.Lock()

    def add(self, tenant: int, kind: str, object_id) -> None:
        if object_id is not None:
            with self.lock:
                self.known[tenant][kind].add(int(object_id))

    def new_response(self) -> int:
        with self.lock:
            self.checked += 1
            return self.checked

    def flag(self, message: str, response: int | None = None) -> None:
        response = self.new_response() if response is None else response
        with self.lock:
            self.violations.append(message)
            self.bad.add(response)

    def check(self, tenant: int, where: str, text: str, ids: dict[str, list] | None = None,
              response: int | None = None) -> bool:
        """True when the body carries no other tenant's marker; ids not (yet) known are deferred."""
        response = self.new_response() if response is None else response
        foreign = foreign_markers(text, tenant)
        if foreign:
            self.flag(f"{where}: tenant {marker(tenant)} saw {', '.join(foreign)}", response)
        with self.lock:
            for kind, values in (ids or {}).items():
                for value in values:
                    if value is not None and int(value) not in self.known[tenant][kind]:
                        self.deferred.append((tenant, kind, int(value), where, response))
        return not foreign

    def saw_usage(self, tenant: int, datasets: int, response: int) -> None:
        with self.lock:
            if datasets > self.usage_seen.get(tenant, (-1, 0))[0]:
                self.usage_seen[tenant] = (datasets, response)

    def settle(self) -> int:
        """Check the deferred ids and usage counts again (every creator has answered by now);
        the number of cross-tenant responses in all."""
        with self.lock:
            late = [(f"{where}: tenant {marker(tenant)} saw {kind} id {value} it never created", response)
                    for tenant, kind, value, where, response in self.deferred
                    if value not in self.known[tenant][kind]]
            late += [(f"GET /api/v1/usage/: tenant {marker(tenant)} was shown {seen} datasets, more than "
                      f"the {len(self.known[tenant]['dataset'])} it created", response)
                     for tenant, (seen, response) in self.usage_seen.items()
                     if seen > len(self.known[tenant]["dataset"])]
            self.deferred, self.usage_seen = [], {}
        for message, response in late:
            self.flag(message, response)
        return len(self.bad)


@dataclass
class Stats:
    """One user's measurements; merged at the end (no lock on the hot path)."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    throttled: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    error_samples: list[str] = field(default_factory=list)
    jobs: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def error(self, endpoint: str, message: str) -> None:
        self.errors[endpoint] += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(f"{endpoint}: {message[:300]}")

    def merge(self, other: Stats) -> None:
        for name in ("latencies",):
            for key, values in getattr(other, name).items():
                getattr(self, name)[key].extend(values)
        for name in ("errors", "throttled", "jobs"):
            for key, value in getattr(other, name).items():
                getattr(self, name)[key] += value
        self.error_samples.extend(other.error_samples[: max(0, 20 - len(self.error_samples))])


def endpoint_rows(stats: Stats, seconds: float) -> list[tuple]:
    """Table rows: endpoint, count, req/s, p50, p95, p99 (ms), errors, 429s; then the totals."""
    rows, every = [], []
    names = sorted(set(stats.latencies) | set(stats.errors) | set(stats.throttled),
                   key=lambda n: (n.split(" ", 1)[1], n))
    for name in names:
        values = stats.latencies.get(name, [])
        every.extend(values)
        rows.append((name, len(values), f"{len(values) / seconds:,.1f}",
                     *(f"{percentile(values, q):,.1f}" for q in (50, 95, 99)),
                     stats.errors.get(name, 0), stats.throttled.get(name, 0)))
    rows.append(("total", len(every), f"{len(every) / seconds:,.1f}",
                 *(f"{percentile(every, q):,.1f}" for q in (50, 95, 99)),
                 sum(stats.errors.values()), sum(stats.throttled.values())))
    return rows


def table(title: str, header: tuple[str, ...], rows: list[tuple]) -> None:
    rows = [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}", flush=True)
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.rjust(w) if i else cell.ljust(w)
                        for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip())
    sys.stdout.flush()


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def dataset_csv(tenant: int, seed: int, rows: int = 100) -> bytes:
    """A small CSV (a few kB) distinct per seed, carrying the tenant's marker in a category
    column and in both class labels."""
    rng = random.Random(seed)
    mark = marker(tenant)
    lines = ["x1,x2,x3,tag,label"]
    for i in range(rows):
        x1, x2, x3 = (rng.gauss(0, 1) for _ in range(3))
        label = "yes" if x1 + 0.5 * x2 - x3 + rng.gauss(0, 0.3) > 0 else "no"
        if i < 2:  # both classes, always
            label = ("yes", "no")[i]
        lines.append(f"{x1:.4f},{x2:.4f},{x3:.4f},{mark}-{'ab'[i % 2]},{mark}-{label}")
    return ("\n".join(lines) + "\n").encode()


def multipart(fields: dict[str, str], filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = f"load{uuid.uuid4().hex}"
    parts = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode()
             for k, v in fields.items()]
    parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
                 f"Content-Type: text/csv\r\n\r\n".encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


# --- HTTP -----------------------------------------------------------------------------------
class Api:
    """One keep-alive connection to the bench's gunicorn, as one member of one tenant."""

    def __init__(self, port: int, slug: str, token: str, stats: Stats):
        self.port, self.host, self.token, self.stats = port, f"{slug}.localhost", token, stats
        self.conn: http.client.HTTPConnection | None = None

    def _send(self, method: str, path: str, body: bytes | None, headers: dict):
        for attempt in (1, 2):
            reused = self.conn is not None
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                # The server closed an idle keep-alive connection before reading this request:
                # send it again once on a new connection (as urllib3 does).
                if not reused or attempt == 2:
                    raise
            except BaseException:
                self.close()
                raise
        raise AssertionError("unreachable")

    def call(self, method: str, route: str, path: str, *, json_body=None, raw: tuple[bytes, str] | None = None,
             record: bool = True) -> tuple[int, bytes]:
        """(status, body); timed under `METHOD route`; status 0 when the request itself failed."""
        headers = {"Host": self.host, "Authorization": f"Bearer {self.token}"}
        body = None
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        elif raw is not None:
            body, headers["Content-Type"] = raw
        endpoint = f"{method} {route}"
        started = time.perf_counter()
        try:
            status, content = self._send(method, path, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            if record:
                self.stats.error(endpoint, f"{type(exc).__name__}: {exc}")
            return 0, b""
        elapsed = (time.perf_counter() - started) * 1000
        if record:
            self.stats.latencies[endpoint].append(elapsed)
            if status == 429:
                self.stats.throttled[endpoint] += 1
            elif status >= 400:
                self.stats.error(endpoint, f"HTTP {status} {content[:300]!r}")
        return status, content

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# --- the simulated user ---------------------------------------------------------------------
class User:
    def __init__(self, tenant: int, index: int, api: Api, ledger: Ledger, seed_model: int):
        self.tenant, self.index, self.api, self.ledger = tenant, index, api, ledger
        self.mark = marker(tenant)
        self.labels = {f"{self.mark}-yes", f"{self.mark}-no"}
        self.model = seed_model  # the newest model this user may use
        self.datasets: list[tuple[int, int]] = []  # (id, rows), own uploads
        self.training: int | None = None
        self.batch: tuple[int, int] | None = None  # (job id, rows expected)
        self.round = 0
        self.last = 0  # number of the last response checked
        self.stats = api.stats

    # helpers
    def _json(self, endpoint: str, status: int, content: bytes, ids: dict | None = None):
        """Parse and cross-tenant-check a JSON body; None when the request failed."""
        if not 200 <= status < 300:
            return None
        text = content.decode("utf-8", "replace")
        self.last = self.ledger.new_response()
        self.ledger.check(self.tenant, endpoint, text, ids, response=self.last)
        try:
            return json.loads(text)
        except ValueError:
            self.stats.error(endpoint, f"not JSON: {text[:200]}")
            return None

    def _bad(self, endpoint: str, message: str) -> None:
        self.stats.error(endpoint, message)

    # the journey
    def step(self) -> None:
        self.round += 1
        self.list_datasets()
        self.predict_online()
        if self.training is None:
            dataset = self.upload()
            if dataset is not None:
                self.start_training(dataset)
        else:
            self.poll_training()
        if self.batch is None:
            self.start_batch()
        else:
            self.poll_batch()
        self.usage()
        if self.round % 3 == 0:
            self.list_models()
            self.list_jobs()

    def me(self) -> None:
        status, content = self.api.call("GET", "/api/v1/me/", "/api/v1/me/")
        body = self._json("GET /api/v1/me/", status, content)
        if body is not None and body["tenant"]["slug"] != self.mark:
            self.ledger.flag(f"GET /api/v1/me/: {self.mark} answered as {body['tenant']['slug']}", self.last)

    def list_datasets(self) -> None:
        route = "/api/v1/datasets/"
        status, content = self.api.call("GET", route, f"{route}?page_size=50")
        body = self._json(f"GET {route}", status, content)
        if body is not None:
            self.ledger.check(self.tenant, f"GET {route}", "", {"dataset": [d["id"] for d in body["results"]]},
                              response=self.last)

    def upload(self) -> tuple[int, int] | None:
        route = "/api/v1/datasets/"
        seed = (self.tenant * 1000 + self.index) * 100_000 + self.round
        content = dataset_csv(self.tenant, seed)
        name = f"{self.mark}-u{self.index}-r{self.round}"
        status, raw = self.api.call("POST", route, route,
                                    raw=multipart({"name": name}, f"{name}.csv", content))
        body = self._json(f"POST {route}", status, raw)
        if body is None:
            return None
        self.ledger.add(self.tenant, "dataset", body["id"])
        if body["name"] != name or body["rows"] != 100:
            self._bad(f"POST {route}", f"unexpected dataset {body['name']!r} rows={body['rows']}")
            return None
        self.datasets.append((body["id"], body["rows"]))
        return body["id"], body["rows"]

    def start_training(self, dataset: tuple[int, int]) -> None:
        route = "/api/v1/training-jobs/"
        status, raw = self.api.call("POST", route, route, json_body={
            "dataset": dataset[0], "model_name": f"{self.mark}-model-u{self.index}", **TRAIN})
        body = self._json(f"POST {route}", status, raw, {"dataset": [dataset[0]]})
        if body is not None:
            self.ledger.add(self.tenant, "job", body["id"])
            self.training = body["id"]

    def _poll(self, job_id: int) -> dict | None:
        route = "/api/v1/jobs/{id}/"
        status, raw = self.api.call("GET", route, f"/api/v1/jobs/{job_id}/")
        body = self._json(f"GET {route}", status, raw, {"job": [job_id]})
        if body is None:
            return None
        if body["id"] != job_id:
            self.ledger.flag(f"GET {route}: asked for job {job_id}, got {body['id']}", self.last)
            return None
        result = body.get("result") or {}
        self.ledger.check(self.tenant, f"GET {route}", "", {
            "dataset": [body.get("dataset")], "model": [result.get("model")],
            "version": [result.get("model_version")]}, response=self.last)
        return body

    def poll_training(self) -> None:
        body = self._poll(self.training)
        if body is None or body["status"] in ("queued", "running"):
            return
        self.training = None
        if body["status"] != "succeeded":
            self.stats.jobs["training " + body["status"]] += 1
            self._bad("training job", f"{body['status']}: {body.get('error')}")
            return
        self.stats.jobs["training succeeded"] += 1
        model_id = body["result"]["model"]
        self.ledger.add(self.tenant, "model", model_id)
        self.ledger.add(self.tenant, "version", body["result"]["model_version"])
        route = "/api/v1/models/{id}/"
        status, raw = self.api.call("GET", route, f"/api/v1/models/{model_id}/")
        model = self._json(f"GET {route}", status, raw, {"model": [model_id]})
        if model is not None:
            self.ledger.check(self.tenant, f"GET {route}", "", {"version": [v["id"] for v in model["versions"]]},
                              response=self.last)
            if model["id"] == model_id and model["name"] == f"{self.mark}-model-u{self.index}":
                self.model = model_id
            else:
                self.ledger.flag(f"GET {route}: asked for model {model_id}, got {model['id']} "
                                 f"{model['name']!r}", self.last)

    def predict_online(self) -> None:
        route = "/api/v1/models/{id}/predict/"
        rng = random.Random(self.round * 7919 + self.index)
        rows = [{"x1": rng.gauss(0, 1), "x2": rng.gauss(0, 1), "x3": rng.gauss(0, 1),
                 "tag": f"{self.mark}-{'ab'[i % 2]}"} for i in range(3)]
        status, raw = self.api.call("POST", route, f"/api/v1/models/{self.model}/predict/",
                                    json_body={"rows": rows})
        body = self._json(f"POST {route}", status, raw, {"version": [body_version(raw)]} if status == 200 else None)
        if body is None:
            return
        predictions = body.get("predictions", [])
        if len(predictions) != 3 or not set(predictions) <= self.labels:
            self.ledger.flag(f"POST {route}: {self.mark} got predictions {predictions}", self.last)

    def start_batch(self) -> None:
        if not self.datasets:
            return
        dataset_id, rows = self.datasets[-1]
        route = "/api/v1/prediction-jobs/"
        status, raw = self.api.call("POST", route, route, json_body={"model": self.model, "dataset": dataset_id})
        body = self._json(f"POST {route}", status, raw, {"dataset": [dataset_id]})
        if body is not None:
            self.ledger.add(self.tenant, "job", body["id"])
            self.batch = (body["id"], rows)

    def poll_batch(self) -> None:
        job_id, rows = self.batch
        body = self._poll(job_id)
        if body is None or body["status"] in ("queued", "running"):
            return
        self.batch = None
        if body["status"] != "succeeded":
            self.stats.jobs["prediction " + body["status"]] += 1
            self._bad("prediction job", f"{body['status']}: {body.get('error')}")
            return
        self.stats.jobs["prediction succeeded"] += 1
        route = "/api/v1/jobs/{id}/result/"
        status, raw = self.api.call("GET", route, f"/api/v1/jobs/{job_id}/result/")
        if status != 200:
            return
        text = raw.decode("utf-8", "replace")
        self.last = self.ledger.new_response()
        self.ledger.check(self.tenant, f"GET {route}", text, response=self.last)
        table_ = list(csv.DictReader(io.StringIO(text)))
        predictions = {r.get("prediction") for r in table_}
        if len(table_) != rows or not predictions <= self.labels:
            self.ledger.flag(f"GET {route}: {self.mark} job {job_id}: {len(table_)} rows "
                             f"(expected {rows}), labels {sorted(predictions)[:4]}", self.last)

    def usage(self) -> None:
        route = "/api/v1/usage/"
        status, raw = self.api.call("GET", route, route)
        body = self._json(f"GET {route}", status, raw)
        if body is not None:  # more datasets than this tenant ever created: another tenant's usage
            self.ledger.saw_usage(self.tenant, body["usage"]["datasets"], self.last)

    def list_models(self) -> None:
        route = "/api/v1/models/"
        status, raw = self.api.call("GET", route, f"{route}?page_size=50")
        body = self._json(f"GET {route}", status, raw)
        if body is not None:
            self.ledger.check(self.tenant, f"GET {route}", "", {
                "model": [m["id"] for m in body["results"]],
                "version": [v["id"] for m in body["results"] for v in m["versions"]]}, response=self.last)

    def list_jobs(self) -> None:
        route = "/api/v1/jobs/"
        status, raw = self.api.call("GET", route, f"{route}?page_size=50")
        body = self._json(f"GET {route}", status, raw)
        if body is not None:
            self.ledger.check(self.tenant, f"GET {route}", "", {
                "job": [j["id"] for j in body["results"]],
                "dataset": [j.get("dataset") for j in body["results"]]}, response=self.last)

    def finish(self) -> None:
        """After the timed phase: one last look at a training job in flight, so that a model it
        created (and a list may already have shown) is known; then cancel what is still pending."""
        if self.training is not None:
            self.poll_training()
        self.cancel_pending()

    def cancel_pending(self) -> None:
        for job_id in (self.training, self.batch[0] if self.batch else None):
            if job_id is not None:
                self.api.call("POST", "/api/v1/jobs/{id}/cancel/", f"/api/v1/jobs/{job_id}/cancel/", record=False)


def body_version(raw: bytes):
    try:
        return json.loads(raw).get("model_version")
    except ValueError:
        return None


# --- processes ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A child process in its own session, stopped by its PID (its process group)."""

    def __init__(self, name: str, argv: list[str], env: dict, log: Path):
        self.name = name
        self.log = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = 20) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if not self.log.closed:
            self.log.close()


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process, its live descendants and the children they reaped
    (the forked job processes), as far as the kernel still knows them."""
    import psutil

    total = 0.0
    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return total
    for proc in family:
        try:
            t = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def wait_http(port: int, proc: Process, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited; see {proc.log.name}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{proc.name} did not answer in {timeout:.0f} s; see {proc.log.name}")


def wait_workers(count: int, procs: list[Process], timeout: float = 90) -> None:
    """Every worker answers a ping, then a few seconds for the pool processes to import."""
    from celery import current_app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited; see {proc.log.name}")
        if len(current_app.control.ping(timeout=1.0)) >= count:
            time.sleep(3)
            return
    raise RuntimeError("workers not ready")


# --- set-up ---------------------------------------------------------------------------------
@dataclass
class TenantSetup:
    index: int
    slug: str
    admin_token: str
    member_tokens: list[str]
    seed_model: int = 0


def create_tenants(tenants: int, users: int) -> list[TenantSetup]:
    from tenants import services

    made = []
    for t in range(tenants):
        slug = marker(t)
        created = services.tenant_create(slug=slug, name=slug.upper(), admin_email=f"admin@{slug}.test",
                                         plan="team", notify=False)
        _, admin_secret = services.api_token_create(user=created.admin, tenant=created.tenant, name="load",
                                                    scope="write", days=1)
        count = users // tenants + (1 if t < users % tenants else 0)
        secrets = []
        for i in range(count):
            email = f"user{i}@{slug}.test"
            services.membership_add(tenant=created.tenant, email=email, role="member", actor=None, notify=False)
            from tenants.models import User as DjangoUser

            person = DjangoUser.objects.get(email=email)
            secrets.append(services.api_token_create(user=person, tenant=created.tenant, name="load",
                                                     scope="write", days=1)[1])
        made.append(TenantSetup(t, slug, admin_secret, secrets))
    return made


def seed(port: int, setups: list[TenantSetup], ledger: Ledger, timeout: float, expired: threading.Event) -> None:
    """Each tenant's admin uploads data, trains one model and shares it with the whole tenant."""
    stats = Stats()
    pending = {}
    for s in setups:
        api = Api(port, s.slug, s.admin_token, stats)
        name = f"{s.slug}-seed"
        status, raw = api.call("POST", "/api/v1/datasets/", "/api/v1/datasets/",
                               raw=multipart({"name": name}, f"{name}.csv", dataset_csv(s.index, s.index)))
        if status != 201:
            raise RuntimeError(f"seed upload {s.slug}: {status} {raw[:300]!r}")
        dataset = json.loads(raw)["id"]
        ledger.add(s.index, "dataset", dataset)
        status, raw = api.call("POST", "/api/v1/training-jobs/", "/api/v1/training-jobs/", json_body={
            "dataset": dataset, "model_name": f"{s.slug}-seed", **TRAIN})
        if status != 202:
            raise RuntimeError(f"seed training {s.slug}: {status} {raw[:300]!r}")
        pending[s.index] = (api, json.loads(raw)["id"])
        ledger.add(s.index, "job", pending[s.index][1])
    deadline = time.monotonic() + timeout
    while pending:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(pending)} seed trainings not done in {timeout:.0f} s")
        if expired.is_set():
            raise RuntimeError("hard timeout while seeding")
        for t, (api, job_id) in list(pending.items()):
            status, raw = api.call("GET", "/api/v1/jobs/{id}/", f"/api/v1/jobs/{job_id}/")
            if status != 200:
                raise RuntimeError(f"seed job {marker(t)}: {status} {raw[:300]!r}")
            body = json.loads(raw)
            if body.get("status") in ("failed", "cancelled"):
                raise RuntimeError(f"seed training {marker(t)}: {body}")
            if body.get("status") == "succeeded":
                model = body["result"]["model"]
                ledger.add(t, "model", model)
                ledger.add(t, "version", body["result"]["model_version"])
                status, raw = api.call("POST", "/api/v1/models/{id}/share/", f"/api/v1/models/{model}/share/",
                                       json_body={"everyone": True, "permission": "use"})
                if status not in (200, 201):
                    raise RuntimeError(f"share {marker(t)}: {status} {raw[:300]!r}")
                setups[t].seed_model = model
                api.close()
                del pending[t]
        time.sleep(0.3)
    if stats.errors:
        raise RuntimeError(f"seed errors: {stats.error_samples}")


def probe_other_hosts(port: int, setups: list[TenantSetup], ledger: Ledger) -> dict:
    """Each tenant's member token on the next tenant's host, on a list and on the seed model:
    must be refused with 401, 403 or 404; a 2xx is a cross-tenant response, anything else (or no
    answer) an error. Returns {asked, refused, failed, statuses}."""
    refused, failed, asked, statuses = 0, 0, 0, set()
    if len(setups) < 2:
        return {"asked": 0, "refused": 0, "failed": 0, "statuses": statuses}
    for s in setups:
        other = setups[(s.index + 1) % len(setups)]
        api = Api(port, other.slug, s.member_tokens[0], Stats())
        for method, route, path, body in (
                ("GET", "/api/v1/datasets/", "/api/v1/datasets/", None),
                ("POST", "/api/v1/models/{id}/predict/", f"/api/v1/models/{other.seed_model}/predict/",
                 {"rows": [{"x1": 0, "x2": 0, "x3": 0, "tag": f"{other.slug}-a"}]})):
            status, raw = api.call(method, route, path, json_body=body, record=False)
            asked += 1
            statuses.add(status)
            if status in (401, 403, 404):
                refused += 1
            elif 200 <= status < 300:
                ledger.flag(f"{method} {route} on {other.slug} with a token of {s.slug}: "
                            f"HTTP {status} {raw[:200]!r}")
            else:
                failed += 1
        api.close()
    return {"asked": asked, "refused": refused, "failed": failed, "statuses": statuses}


# --- the audited list against a bare DRF list over the same rows -----------------------------
def hammer(port: int, host: str, path: str, token: str, seconds: float, connections: int) -> dict:
    """`connections` threads, each with its own keep-alive connection, GET `path` as fast as they
    can for `seconds`; {"ok": latencies ms of 200s, "errors": n, "count": last body's count}."""
    stop = threading.Event()
    results: list[tuple[list[float], int, int | None]] = []
    lock = threading.Lock()
    headers = {"Host": host, **({"Authorization": f"Bearer {token}"} if token else {})}

    def loop() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
        ok, errors, count = [], 0, None
        while not stop.is_set():
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                errors += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
                continue
            if response.status == 200:
                ok.append((time.perf_counter() - started) * 1000)
                count = json.loads(body)["count"] if count is None else count
            else:
                errors += 1
        conn.close()
        with lock:
            results.append((ok, errors, count))

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(HTTP_TIMEOUT + 5)
    counts = {c for _, _, c in results if c is not None}
    return {"ok": [v for ok, _, _ in results for v in ok], "errors": sum(e for _, e, _ in results),
            "counts": sorted(counts)}


def hammer_processes(port: int, host: str, path: str, token: str, seconds: float, connections: int,
                     processes: int = 2) -> dict:
    """hammer() in `processes` child processes (one Python client process tops out well below
    what two cores of gunicorn serve); their latencies pooled, req/s over `seconds`."""
    share = [connections // processes + (1 if i < connections % processes else 0) for i in range(processes)]
    children = [subprocess.Popen([PYTHON, __file__, "--hammer", json.dumps(
        [port, host, path, token, seconds, n])], stdout=subprocess.PIPE, text=True, cwd=ROOT)
        for n in share if n]
    ok, errors, counts = [], 0, set()
    for child in children:
        out, _ = child.communicate(timeout=seconds + HTTP_TIMEOUT + 30)
        part = json.loads(out.strip().splitlines()[-1])
        ok += part["ok"]
        errors += part["errors"]
        counts |= set(part["counts"])
    return {"rps": len(ok) / seconds, "p50": percentile(ok, 50), "p99": percentile(ok, 99),
            "ok": len(ok), "errors": errors, "counts": sorted(counts)}


def list_entries(tenant_slug: str, actor_email: str) -> int:
    """access.read entries of GET /api/v1/datasets/ by this person in the tenant's chain, once
    every entry still buffered is in it (the verification flushes first)."""
    from tenants.auditing.audit_chain import chains_verify
    from tenants.models import AuditEvent, Tenant

    tenant = Tenant.objects.get(slug=tenant_slug)
    result = chains_verify(tenant_ids=[tenant.id], trigger="command")[0]
    if not result.ok:
        raise RuntimeError(f"audit chain of {tenant_slug} broken: {result.reason}")
    return AuditEvent.objects.filter(tenant_id=tenant.id, action="access.read", actor_email=actor_email,
                                     details__path="/api/v1/datasets/").count()


def audited_vs_bare(port: int, setup: TenantSetup, args, work: Path, env: dict, procs: list) -> dict:
    """GET /api/v1/datasets/?page_size=50 (tenant routing, token, membership gate, sharing
    filter, audit entry) against bench/bare_list/ (DRF alone) on the same tenant's rows, both on
    gunicorn with the same workers and threads, in interleaved rounds under the same load."""
    from tenants.models import Tenant

    tenant = Tenant.objects.get(slug=setup.slug)
    api = Api(port, setup.slug, setup.admin_token, Stats())
    while True:  # at least --audit-datasets rows to list (the admin sees every one)
        status, raw = api.call("GET", "/api/v1/datasets/", "/api/v1/datasets/?page_size=1", record=False)
        have = json.loads(raw)["count"] if status == 200 else 0
        if have >= args.audit_datasets:
            break
        name = f"{setup.slug}-list{have}"
        status, raw = api.call("POST", "/api/v1/datasets/", "/api/v1/datasets/", record=False,
                               raw=multipart({"name": name}, f"{name}.csv", dataset_csv(setup.index, 7 + have)))
        if status != 201:
            raise RuntimeError(f"upload for the list comparison: {status} {raw[:300]!r}")
    api.close()
    bare_port = free_port()
    bare = Process("bare-list", [
        PYTHON, "-m", "gunicorn", "bare_list.wsgi", "--chdir", str(HERE), "--workers", str(args.web_workers),
        "--worker-class", "gthread", "--threads", str(args.web_threads), "--timeout", "120",
        "--bind", f"127.0.0.1:{bare_port}"],
        dict(env, DJANGO_SETTINGS_MODULE="bare_list.settings", BARE_LIST_SCHEMA=tenant.schema_name),
        work / "bare-list.log")
    procs.append(bare)
    try:
        deadline = time.monotonic() + 60
        while not hammer(bare_port, "bare", "/datasets/", "", 0.2, 1)["ok"]:
            if not bare.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"bare list server not ready; see {bare.log.name}")
        targets = {"audited": (port, f"{setup.slug}.localhost", "/api/v1/datasets/?page_size=50", setup.admin_token),
                   "bare": (bare_port, "bare", "/datasets/?page_size=50", "")}
        servers = {"audited": procs[0].proc.pid, "bare": bare.proc.pid}
        same_rows(targets)
        for target in targets.values():  # every worker warm, caches filled
            hammer_processes(*target, 1.0, args.audit_connections)
        admin = f"admin@{setup.slug}.test"
        entries_before = list_entries(setup.slug, admin)
        runs = {"audited": [], "bare": []}
        for _ in range(args.audit_rounds):
            for name, target in targets.items():
                cpu = tree_cpu(servers[name])
                run = hammer_processes(*target, args.audit_seconds, args.audit_connections)
                run["cpu_ms"] = (tree_cpu(servers[name]) - cpu) / max(run["ok"], 1) * 1000
                runs[name].append(run)
        entries_after = list_entries(setup.slug, admin)
    finally:
        bare.stop()
    return {"runs": runs, "entries": entries_after - entries_before}


def same_rows(targets: dict) -> None:
    """Both lists answer the same results (rows, order, fields and values), or the comparison
    would not be of like with like (the bare list must follow the platform's output)."""
    results = {}
    for name, (port, host, path, token) in targets.items():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", path, headers={"Host": host, **({"Authorization": f"Bearer {token}"} if token else {})})
        response = conn.getresponse()
        results[name] = json.loads(response.read())["results"]
        conn.close()
    if results["audited"] != results["bare"]:
        fields = {k for a, b in zip(results["audited"], results["bare"], strict=False) for k in a.keys() | b.keys()
                  if a.get(k) != b.get(k)}
        raise RuntimeError(f"the bare list differs from the platform's (fields {sorted(fields)}): "
                           "update bench/bare_list/ to the platform's dataset output")


def print_audited_vs_bare(result: dict, args) -> tuple[int, float]:
    """Prints the rounds and the medians; returns (errors, audited/bare ratio of median req/s)."""
    runs = result["runs"]
    rows = [(f"{name} #{i + 1}", run["ok"], f"{run['rps']:,.1f}", f"{run['p50']:,.1f}", f"{run['p99']:,.1f}",
             f"{run['cpu_ms']:.1f}", run["errors"], ",".join(str(c) for c in run["counts"]))
            for i in range(args.audit_rounds) for name in ("audited", "bare") for run in [runs[name][i]]]
    median = {name: sorted(runs[name], key=lambda r: r["rps"])[len(runs[name]) // 2] for name in runs}
    for name in ("audited", "bare"):
        run = median[name]
        rows.append((f"{name} (median round)", run["ok"], f"{run['rps']:,.1f}", f"{run['p50']:,.1f}",
                     f"{run['p99']:,.1f}", f"{run['cpu_ms']:.1f}", "", ""))
    table(f"audited dataset list (GET /api/v1/datasets/, platform) vs bare DRF list of the same rows "
          f"(bench/bare_list/): {args.audit_connections} connections, {args.audit_rounds} interleaved rounds "
          f"of {args.audit_seconds:g} s, gunicorn {args.web_workers} gthread workers x {args.web_threads} "
          f"threads each", ("run", "200s", "req/s", "p50 ms", "p99 ms", "web CPU ms/req", "errors", "rows listed"),
          rows)
    ratio = median["audited"]["rps"] / median["bare"]["rps"] if median["bare"]["rps"] else float("nan")
    served = sum(r["ok"] for r in runs["audited"])
    print(f"audited / bare req/s (median rounds): {ratio:.2f}x (target >= 0.70x); p99 "
          f"{median['audited']['p99']:,.1f} ms vs {median['bare']['p99']:,.1f} ms")
    print(f"access entries in the chain for the audited list requests: {result['entries']:,} "
          f"for {served:,} answered (chain verified)")
    errors = sum(r["errors"] for rs in runs.values() for r in rs)
    counts = {c for rs in runs.values() for r in rs for c in r["counts"]}
    if len(counts) > 1:
        print(f"the two lists disagree on the number of rows: {sorted(counts)}")
        errors += 1
    if result["entries"] != served:
        errors += 1
    return errors, ratio


# --- run ------------------------------------------------------------------------------------
def run_users(port: int, setups: list[TenantSetup], ledger: Ledger, args, pids: list[int],
              expired: threading.Event) -> tuple[Stats, float, list[User], dict]:
    users = [User(s.index, i, Api(port, s.slug, token, Stats()), ledger, s.seed_model)
             for s in setups for i, token in enumerate(s.member_tokens)]
    for user in users:  # each connection opened and each worker warm before the clock starts
        user.me()
    start = threading.Barrier(len(users) + 1)
    stop = threading.Event()

    def loop(user: User) -> None:
        rng = random.Random(user.tenant * 100 + user.index)
        start.wait()
        while not stop.is_set():
            try:
                user.step()
            except Exception as exc:  # a malformed body: count it, keep the user going
                user.stats.error("journey", f"{type(exc).__name__}: {exc}")
            if args.think:
                stop.wait(rng.expovariate(1 / args.think))

    threads = [threading.Thread(target=loop, args=(u,), name=f"user-{u.tenant}-{u.index}", daemon=True)
               for u in users]
    for thread in threads:
        thread.start()
    for user in users:  # the warm-up requests are not measured
        user.stats.latencies.clear()
        user.stats.errors.clear()
    start.wait()
    began = time.perf_counter()
    cpu_before = [tree_cpu(pid) for pid in pids] + [time.process_time()]
    load_before = os.getloadavg()[0]
    while time.perf_counter() - began < args.seconds and not expired.is_set():
        stop.wait(min(0.5, max(args.seconds - (time.perf_counter() - began), 0)))
    stop.set()
    for thread in threads:
        thread.join(timeout=HTTP_TIMEOUT + 5)
    elapsed = time.perf_counter() - began
    cpu = [after - before for after, before in
           zip([tree_cpu(pid) for pid in pids] + [time.process_time()], cpu_before, strict=True)]
    machine = {"cpu": cpu, "load": (load_before, os.getloadavg()[0])}
    stuck = [t.name for t in threads if t.is_alive()]
    total = Stats()
    for user in users:
        total.merge(user.stats)
    if stuck:
        total.error("journey", f"{len(stuck)} users still in a request {HTTP_TIMEOUT + 5} s after the end")
    return total, elapsed, users, machine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--web-workers", type=int, default=3, help="gunicorn workers (gthread)")
    parser.add_argument("--web-threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--celery-concurrency", type=int, default=2, help="processes per Celery worker")
    parser.add_argument("--think", type=float, default=0.05, help="mean pause between rounds, s")
    parser.add_argument("--hard-timeout", type=float, default=0,
                        help="stop everything after this many seconds (default: --seconds + 420)")
    parser.add_argument("--quick", action="store_true", help="10 users, 2 tenants, 10 s")
    parser.add_argument("--audit-only", action="store_true",
                        help="only the audited list vs the bare DRF list (one tenant, no journey)")
    parser.add_argument("--audit-rounds", type=int, default=3, help="interleaved rounds of each list")
    parser.add_argument("--audit-seconds", type=float, default=5, help="seconds per round")
    parser.add_argument("--audit-connections", type=int, default=16, help="concurrent connections")
    parser.add_argument("--audit-datasets", type=int, default=20, help="rows the lists show (at least)")
    parser.add_argument("--hammer", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hammer:  # a client process of hammer_processes()
        print(json.dumps(hammer(*json.loads(args.hammer))))
        return 0
    if args.audit_only:
        args.users, args.tenants = 1, 1
    if args.quick:
        args.users, args.tenants, args.seconds = 10, 2, 10
    if not 1 <= args.tenants <= 100 or args.users < args.tenants:
        parser.error("1..100 tenants and at least one user per tenant")
    hard = args.hard_timeout or args.seconds + 420

    run_id = uuid.uuid4().hex[:6]
    work = Path(tempfile.mkdtemp(prefix="portal-load-"))
    # Before Django starts: this run's files, cache keys and queues are its own; every child inherits.
    os.environ.update(DJANGO_DEBUG="0", PORTAL_BASE_DOMAIN="localhost", PORTAL_JOB_ISOLATION="fork",
                      PORTAL_STORAGE_DIR=str(work / "storage"), PORTAL_CACHE_PREFIX=f"bench-load-{run_id}",
                      PORTAL_QUEUE_PREFIX=f"ld{run_id}-", DJANGO_SETTINGS_MODULE="portal.settings.local")
    # Throw-away secrets when none are configured (a fresh checkout has no var/): the database and
    # the files are this run's alone.
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("PORTAL_MASTER_KEYS", base64.b64encode(os.urandom(32)).decode())
    sys.path.insert(0, str(HERE))
    from _db import bench_database

    procs: list[Process] = []
    finished = threading.Event()

    expired = threading.Event()

    def watchdog() -> None:
        if finished.wait(hard):
            return
        expired.set()
        say(f"hard timeout ({hard:.0f} s): stopping the bench's processes")
        for proc in procs:
            proc.stop(grace=5)
        if not finished.wait(60):
            drop_database_now()
            os._exit(3)

    threading.Thread(target=watchdog, daemon=True).start()
    ledger = Ledger(args.tenants)
    t0 = time.monotonic()
    keep_logs = False
    try:
        with bench_database("load"):
            from django.conf import settings

            from mlcore.jobs import queue_for

            say(f"[{time.monotonic() - t0:5.1f} s] creating {args.tenants} tenants, {args.users} members ...")
            setups = create_tenants(args.tenants, args.users)
            port = free_port()
            env = dict(os.environ)
            procs.append(Process("gunicorn", [
                PYTHON, "-m", "gunicorn", "portal.wsgi", "--workers", str(args.web_workers),
                "--worker-class", "gthread", "--threads", str(args.web_threads), "--timeout", "120",
                "--bind", f"127.0.0.1:{port}"], env, work / "gunicorn.log"))
            for name, queues in (("training", [queue_for("training")]),
                                 ("prediction", [queue_for("prediction"), settings.CELERY_TASK_DEFAULT_QUEUE])):
                procs.append(Process(f"celery-{name}", [
                    PYTHON, "-m", "celery", "-A", "portal", "worker", "--loglevel", "WARNING",
                    "--queues", ",".join(queues), "--concurrency", str(args.celery_concurrency),
                    "--hostname", f"load-{name}-{run_id}@%h", "--without-gossip", "--without-mingle",
                    "--without-heartbeat"], env, work / f"celery-{name}.log"))
            say(f"[{time.monotonic() - t0:5.1f} s] starting gunicorn and 2 Celery workers ...")
            # Beat, as in production: buffered audit entries, online counts and usage are flushed
            # while the users run (and the jobs reaper, the wake-up safety net...).
            procs.append(Process("celery-beat", [
                PYTHON, "-m", "celery", "-A", "portal", "beat", "--loglevel", "WARNING",
                "--schedule", str(work / "beat-schedule")], env, work / "celery-beat.log"))
            wait_http(port, procs[0])
            wait_workers(2, procs[1:3])
            if args.audit_only:
                say(f"[{time.monotonic() - t0:5.1f} s] audited list vs bare list ...")
                compared = audited_vs_bare(port, setups[0], args, work, env, procs)
                for proc in procs:
                    proc.stop()
                clean_redis_run(run_id)
                audit_errors, _ = print_audited_vs_bare(compared, args)
                return 1 if audit_errors else 0
            say(f"[{time.monotonic() - t0:5.1f} s] seeding one shared model per tenant ...")
            seed(port, setups, ledger, timeout=180, expired=expired)
            say(f"[{time.monotonic() - t0:5.1f} s] running {args.users} users for {args.seconds:g} s ...")
            stats, elapsed, users, machine = run_users(port, setups, ledger, args,
                                                       [p.proc.pid for p in procs[:3]], expired)
            for user in users:  # after the measured phase: not in the figures
                user.finish()
                user.api.close()
            probes = probe_other_hosts(port, setups, ledger)
            cross = ledger.settle()
            say(f"[{time.monotonic() - t0:5.1f} s] audited list vs bare list ...")
            compared = audited_vs_bare(port, setups[0], args, work, env, procs)
            say(f"[{time.monotonic() - t0:5.1f} s] stopping ...")
            for proc in procs:
                proc.stop()
            clean_redis_run(run_id)
    except Exception:
        keep_logs = True
        say(f"the bench failed{' after its hard timeout' if expired.is_set() else ''}; "
            f"gunicorn and Celery logs in {work}")
        if not expired.is_set():
            raise
        return 2
    finally:
        finished.set()
        for proc in procs:
            proc.stop(grace=5)
        shutil.rmtree(work / "storage", ignore_errors=True)
        if not (keep_logs or expired.is_set()):
            shutil.rmtree(work, ignore_errors=True)
    if expired.is_set():
        say(f"hard timeout ({hard:.0f} s) during the run: figures below are cut short; logs in {work}")

    audit_errors, _ = print_audited_vs_bare(compared, args)
    errors = sum(stats.errors.values()) + probes["failed"] + audit_errors
    table(f"load: {args.users} users over {args.tenants} tenants for {elapsed:.1f} s; gunicorn "
          f"{args.web_workers} gthread workers x {args.web_threads} threads; Celery 2 workers x "
          f"{args.celery_concurrency} processes; think time {args.think:g} s (mean)",
          ("endpoint", "count", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "429"),
          endpoint_rows(stats, elapsed))
    web, training, prediction, client = machine["cpu"]
    total_requests = sum(len(v) for v in stats.latencies.values())
    print(f"\nCPU seconds during the run: web (gunicorn) {web:.1f} ({web / max(total_requests, 1) * 1000:.1f} ms "
          f"per request), Celery workers and their jobs {training + prediction:.1f}, the simulated users "
          f"(this process) {client:.1f}; {os.cpu_count()} cores x {elapsed:.1f} s = {os.cpu_count() * elapsed:.0f} "
          f"available; 1-minute load average {machine['load'][0]:.1f} before, {machine['load'][1]:.1f} after "
          f"(the machine is shared)")
    jobs = ", ".join(f"{k} {v}" for k, v in sorted(stats.jobs.items())) or "none"
    print(f"\njobs completed during the run: {jobs}")
    print(f"responses checked for other tenants' data: {ledger.checked:,}")
    print(f"a member token on another tenant's host: refused {probes['refused']} of {probes['asked']} "
          f"(HTTP {', '.join(str(s) for s in sorted(probes['statuses'])) or '-'}; 0 = no answer)")
    if stats.error_samples:
        print("first errors:\n  " + "\n  ".join(stats.error_samples[:10]))
    if ledger.violations:
        print("first cross-tenant responses:\n  " + "\n  ".join(ledger.violations[:10]))
    print(f"errors: {errors}")
    print(f"cross-tenant responses: {cross}")
    return 1 if errors or cross else 0


def clean_redis_run(run_id: str) -> None:
    from _platform import clean_redis

    clean_redis(f"bench-load-{run_id}", f"ld{run_id}-")


def drop_database_now() -> None:
    """Last resort before leaving without cleaning up: drop this run's database (DATABASE_URL
    names it once bench_database has made it)."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    parts = urlsplit(os.environ.get("DATABASE_URL", ""))
    name = parts.path.lstrip("/")
    if not name.startswith("portal_load_"):
        return
    admin_url = urlunsplit(parts._replace(path="/postgres", scheme="postgresql"))
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.Error as exc:
        say(f"could not drop {name}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
