"""End to end: the client package installed from client/ into a fresh virtualenv, against a real
gunicorn and Celery worker on the test database, through its Python API and its CLI.

The virtualenv is built while the servers start (pip installs `client[pandas]` from the machine's
package index into a venv made with `python -m venv --without-pip`, using this interpreter's pip).
Then, as Bob with a write token, a script in that venv uploads a CSV, trains two versions (the
second start's answer is lost once, and the client's retry with the same Idempotency-Key gets the
job the server already made), waits, promotes version 2, predicts online from a DataFrame, runs a batch prediction and downloads
its output, and reads usage; the `portal` command does the same with `--json`, and a missing job
gives exit status 5 and one line on stderr.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from tenants.services import api_token_create
from tests.factories import host
from tests.mlcore.conftest import churn_csv
from tests.servers import WebServer, Worker

pytestmark = pytest.mark.slow

CLIENT_DIR = Path(settings.BASE_DIR) / "client"
DEADLINE_SECONDS = 115  # the whole test, servers and install included

JOURNEY = r'''
import json, sys
import httpx
import pandas as pd
from portal_client import Client, NotFound


class LoseFirstTrainingAnswer(httpx.HTTPTransport):
    """The server handles the first POST /training-jobs/, but its answer never arrives."""
    lost = 0

    def handle_request(self, request):
        response = super().handle_request(request)
        if request.url.path.endswith("/training-jobs/") and not self.lost:
            self.lost += 1
            response.read()
            response.close()
            raise httpx.ReadTimeout("answer lost", request=request)
        return response

csv_path, scored_path = sys.argv[1], sys.argv[2]
portal = Client()  # PORTAL_URL, PORTAL_TOKEN
out = {}
dataset = portal.datasets.upload(csv_path, name="churn-py", progress=False)
out["dataset"] = {"id": dataset.id, "rows": dataset.rows,
                  "columns": sorted(c["name"] for c in dataset.columns)}
out["listed"] = [d.id for d in portal.datasets.list()]
versions = []
job = portal.training_jobs.start(dataset=dataset, target="churned", algorithm="logistic_regression",
                                 model_name="churn-py")
versions.append(portal.jobs.wait(job, timeout=60, progress=False).result)
# The second start is retried by the client after its answer was lost: with the same
# Idempotency-Key, the server answers with the job it already made instead of a second one.
flaky = Client(transport=LoseFirstTrainingAnswer())
job = flaky.training_jobs.start(dataset=dataset, target="churned", algorithm="random_forest",
                                model_name="churn-py", params={"n_estimators": 20})
versions.append(portal.jobs.wait(job, timeout=60, progress=False).result)
out["retried_job"] = {"lost": flaky._http._transport.lost, "id": job.id,
                      "jobs": sorted(j.id for j in portal.jobs.list(kind="training") if j.dataset == dataset.id)}
model = portal.models.get(versions[0]["model"])
out["before_promote"] = model.production_version
version = portal.models.version(versions[1]["model_version"])
out["metrics"], out["classes"] = sorted(version.metrics), version.classes
model = portal.models.promote(version)
out["after_promote"] = model.production_version
frame = pd.read_csv(csv_path).drop(columns=["churned"]).head(25)
frame.index = range(100, 125)
scored = portal.models.predict(model, frame)
out["online"] = {"columns": list(scored.columns), "index": [int(i) for i in scored.index[:2]],
                 "rows": len(scored), "version": scored.attrs["version"],
                 "labels": sorted(set(scored["prediction"]))}
batch = portal.prediction_jobs.run(model=model, data=frame, out=scored_path, progress=True)
result = pd.read_csv(scored_path)
out["batch"] = {"status": batch.status, "rows_scored": batch.result["rows_scored"],
                "columns": list(result.columns), "rows": len(result)}
usage = portal.usage()
out["usage"] = {"plan": usage.plan, "datasets": usage.usage["datasets"],
                "predicted_rows": usage.usage["predicted_rows"]}
try:
    portal.jobs.get(987654)
except NotFound as exc:
    out["missing"] = {"status": exc.status, "detail": exc.detail}
print(json.dumps(out))
'''


def build_venv(root: Path) -> subprocess.Popen:
    """Start creating <root>/venv with the client installed; returns the running process."""
    source = root / "client-src"  # pip builds in the source tree: keep the repository clean
    shutil.copytree(CLIENT_DIR, source, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info",
                                                                      "__pycache__"))
    venv = root / "venv"
    script = (f"{sys.executable} -m venv --without-pip {venv} && "
              f"{sys.executable} -m pip --python {venv}/bin/python install --quiet --no-compile "
              f"'{source}[pandas]'")
    return subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run(cmd: list[str], env: dict[str, str], deadline: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, capture_output=True, text=True,
                          timeout=max(1.0, deadline - time.monotonic()))


def test_the_installed_client_and_cli_upload_train_promote_predict_and_read_usage(committed, tmp_path, acme, bob):
    started = time.monotonic()
    deadline = started + DEADLINE_SECONDS
    installing = build_venv(tmp_path)
    web = WebServer("client-e2e-web", workers=1, timeout=30)  # the journeys are sequential
    worker = Worker("client-e2e-worker", concurrency=1)
    try:
        _, token = api_token_create(user=bob, tenant=acme, name="client-e2e", scope="write", days=1)
        log, _ = installing.communicate(timeout=deadline - time.monotonic())
        assert installing.returncode == 0, log
        installed = time.monotonic() - started
        print(f"client e2e: servers up and client installed after {installed:.1f} s")
        python, portal = tmp_path / "venv/bin/python", tmp_path / "venv/bin/portal"
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PORTAL_URL": f"http://{host('acme')}:{web.port}",
               "PORTAL_TOKEN": token}
        csv_path = tmp_path / "churn.csv"
        csv_path.write_bytes(churn_csv(rows=200))

        # Python API.
        (tmp_path / "journey.py").write_text(JOURNEY)
        done = run([str(python), str(tmp_path / "journey.py"), str(csv_path), str(tmp_path / "py-batch.csv")], env, deadline)
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
        print(f"client e2e: Python journey done after {time.monotonic() - started:.1f} s")
        assert out["dataset"]["rows"] == 200
        assert out["dataset"]["columns"] == ["autopay", "churned", "monthly", "plan", "tenure"]
        assert out["dataset"]["id"] in out["listed"]
        assert (out["before_promote"], out["after_promote"]) == (1, 2)
        retried = out["retried_job"]  # one lost answer, one retry, still two training jobs
        assert retried["lost"] == 1 and len(retried["jobs"]) == 2 and retried["id"] == max(retried["jobs"])
        assert "accuracy" in out["metrics"]
        probabilities = [f"proba_{c}" for c in out["classes"]]  # churned: yes/no, read as a boolean
        assert len(probabilities) == 2
        assert out["online"] == {"columns": ["prediction", *probabilities], "index": [100, 101],
                                 "rows": 25, "version": 2, "labels": out["online"]["labels"]}
        assert {str(label).lower() for label in out["online"]["labels"]} <= {"true", "false"}
        assert out["batch"] == {"status": "succeeded", "rows_scored": 25, "rows": 25,
                                "columns": ["row", "prediction", *probabilities]}
        assert "Job" in done.stderr and "Downloading py-batch.csv" in done.stderr  # progress on stderr
        assert out["usage"]["plan"] == "team" and out["usage"]["datasets"] >= 2
        assert out["usage"]["predicted_rows"] >= 50
        assert out["missing"] == {"status": 404, "detail": "No such resource."}

        # The CLI.
        def portal_json(*args: str) -> dict | list:
            result = run([str(portal), *args, "--json"], env, deadline)
            assert result.returncode == 0, (args, result.stderr)
            return json.loads(result.stdout)

        uploaded = run([str(portal), "datasets", "upload", str(csv_path), "--name", "churn-cli", "--json"],
                       env, deadline)
        assert uploaded.returncode == 0, uploaded.stderr
        assert "Uploading churn.csv" in uploaded.stderr  # the progress bar, on stderr only
        dataset = json.loads(uploaded.stdout)
        assert dataset["rows"] == 200 and dataset["name"] == "churn-cli"
        job = portal_json("train", "--dataset", str(dataset["id"]), "--target", "churned",
                          "--algorithm", "logistic_regression", "--model-name", "churn-cli",
                          "--param", "max_iter=200", "--wait", "--timeout", "60")
        assert job["status"] == "succeeded" and job["result"]["version"] == 1
        model_id = job["result"]["model"]
        assert portal_json("models", "promote", str(model_id), "--version", "1")["production_version"] == 1
        assert any(m["id"] == model_id for m in portal_json("models", "list"))
        assert job["id"] in [j["id"] for j in portal_json("jobs", "list")]
        new = tmp_path / "new.csv"
        new.write_text("\n".join(csv_path.read_text().splitlines()[:11]) + "\n")
        online = portal_json("predict", "--model", str(model_id), "--file", str(new), "--out", str(tmp_path / "scored.csv"))
        assert online["rows"] == 10 and online["version"] == 1
        scored = (tmp_path / "scored.csv").read_text().splitlines()
        assert scored[0] == ",".join(["tenure,monthly,plan,autopay,churned,prediction", *probabilities])
        assert len(scored) == 11
        batch = portal_json("predict", "--model", str(model_id), "--file", str(new), "--out",
                            str(tmp_path / "batch.csv"), "--batch", "--timeout", "60")
        assert batch["status"] == "succeeded" and batch["result"]["rows_scored"] == 10
        with (tmp_path / "batch.csv").open(newline="") as file:
            assert next(csv.reader(file)) == ["row", "prediction", *probabilities]
        shown = portal_json("datasets", "show", str(dataset["id"]))
        assert [c["name"] for c in shown["columns"]] == ["tenure", "monthly", "plan", "autopay", "churned"]
        model = portal_json("models", "show", str(model_id))
        assert [v["version"] for v in model["versions"]] == [1] and model["production_version"] == 1
        assert portal_json("models", "show", str(model_id), "--version", "1")["target"] == "churned"
        assert portal_json("whoami")["role"] == "member"
        usage = portal_json("usage")
        assert usage["usage"]["datasets"] >= 4 and set(usage["limits"]) >= set(usage["usage"])

        missing = run([str(portal), "jobs", "show", "987654"], env, deadline)
        assert (missing.returncode, missing.stdout) == (5, "")
        assert missing.stderr == "portal: No such resource. (404)\n"
        unknown_version = run([str(portal), "models", "promote", str(model_id), "--version", "9"], env, deadline)
        assert unknown_version.returncode == 5 and unknown_version.stderr.count("\n") == 1
        bad = run([str(portal), "train", "--dataset", str(dataset["id"]), "--target", "nope",
                   "--algorithm", "ridge"], env, deadline)
        assert bad.returncode == 7 and "nope" in bad.stderr, bad.stderr
        assert portal_json("datasets", "delete", str(dataset["id"])) == {"deleted": dataset["id"]}
        print(f"client e2e: CLI journey done after {time.monotonic() - started:.1f} s")
    finally:
        installing.kill()
        web.stop()
        worker.stop()
