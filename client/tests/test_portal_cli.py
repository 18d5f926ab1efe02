"""The `portal` command against httpx.MockTransport: output, exit codes, completion."""

from __future__ import annotations

import json
import shutil
import subprocess

import httpx
import pytest
from portal_client import cli
from portal_client import client as client_module


@pytest.fixture
def serve(monkeypatch):
    """serve(handler): every Client the CLI makes answers through handler."""
    monkeypatch.setenv("PORTAL_URL", "http://acme.localhost:8000")
    monkeypatch.setenv("PORTAL_TOKEN", "tok")

    def install(handler):
        real = client_module.Client.__init__

        def init(self, url=None, token=None, **kwargs):
            real(self, url, token, transport=httpx.MockTransport(handler), **kwargs)
            self._sleep = lambda seconds: None

        monkeypatch.setattr(client_module.Client, "__init__", init)

    return install


def problem(status, detail, slug=None):
    return httpx.Response(status, json={"type": f"/problems/{slug}" if slug else "about:blank",
                                        "title": "T", "status": status, "detail": detail})


def test_datasets_list_prints_json_for_scripts(serve, capsys):
    serve(lambda r: httpx.Response(200, json={"count": 1, "next": None, "previous": None,
                                              "results": [{"id": 3, "name": "churn", "rows": 10}]}))
    assert cli.main(["datasets", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"id": 3, "name": "churn", "rows": 10}]


def test_a_missing_object_exits_5_with_one_line_on_stderr(serve, capsys):
    serve(lambda r: problem(404, "No such resource."))
    assert cli.main(["jobs", "show", "999"]) == cli.NOT_FOUND == 5
    captured = capsys.readouterr()
    assert captured.err == "portal: No such resource. (404)\n" and captured.out == ""


def test_a_quota_refusal_exits_4_and_prints_the_problem_with_json(serve, capsys):
    serve(lambda r: problem(403, "Model versions: 3 of 3 used. Ask alice@acme.test.", "quota-exceeded"))
    code = cli.main(["--json", "train", "--dataset", "1", "--target", "y", "--algorithm", "ridge"])
    captured = capsys.readouterr()
    assert code == cli.QUOTA == 4
    assert json.loads(captured.out)["error"]["type"] == "/problems/quota-exceeded"
    assert captured.err.count("\n") == 1


def test_params_are_read_as_json_values(serve, capsys):
    seen = []

    def answer(request):
        seen.append(json.loads(request.content))
        return httpx.Response(202, json={"id": 4, "kind": "training", "status": "queued", "progress": 0})

    serve(answer)
    assert cli.main(["train", "--dataset", "1", "--target", "y", "--algorithm", "random_forest",
                     "--param", "n_estimators=50", "--param", "criterion=gini", "--json"]) == 0
    assert seen[0]["params"] == {"n_estimators": 50, "criterion": "gini"}


def test_a_failed_job_exits_3(serve, capsys):
    serve(lambda r: httpx.Response(200, json={"id": 4, "kind": "training", "status": "failed",
                                              "progress": 30, "error": "boom", "message": ""}))
    assert cli.main(["jobs", "wait", "4", "--quiet"]) == cli.JOB_FAILED == 3
    assert "boom" in capsys.readouterr().err


def test_cancel_posts_to_the_job_and_says_what_became_of_it(serve, capsys):
    seen = []

    def answer(request):
        seen.append((request.method, request.url.path))
        return httpx.Response(202, json={"id": 4, "kind": "training", "status": "cancelled", "progress": 0,
                                         "message": "Cancelled before it started"})

    serve(answer)
    assert cli.main(["jobs", "cancel", "4"]) == 0
    assert seen == [("POST", "/api/v1/jobs/4/cancel/")]
    assert capsys.readouterr().out == "Job 4: cancelled (Cancelled before it started)\n"


def test_no_token_is_a_usage_error(monkeypatch, capsys):
    monkeypatch.delenv("PORTAL_TOKEN", raising=False)
    assert cli.main(["--url", "http://x.localhost", "usage"]) == cli.USAGE == 2
    assert "PORTAL_TOKEN" in capsys.readouterr().err


def test_a_bad_argument_exits_2(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["train", "--dataset", "one"])
    assert caught.value.code == 2


def test_online_predict_writes_the_rows_with_their_predictions(serve, tmp_path, capsys):
    def answer(request):
        rows = json.loads(request.content)["rows"]
        assert rows == [{"age": 31, "plan": "pro", "spend": 1.5}, {"age": None, "plan": "x", "spend": 2}]
        return httpx.Response(200, json={"model_version": 8, "version": 2, "predictions": ["no", "yes"],
                                         "probabilities": [{"no": 0.9, "yes": 0.1}, {"no": 0.2, "yes": 0.8}]})

    serve(answer)
    source, out = tmp_path / "new.csv", tmp_path / "scored.csv"
    source.write_text("age,plan,spend\n31,pro,1.5\n,x,2\n")
    assert cli.main(["predict", "--model", "2", "--file", str(source), "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 2
    assert out.read_text().splitlines() == ["age,plan,spend,prediction,proba_no,proba_yes",
                                            "31,pro,1.5,no,0.9,0.1", ",x,2,yes,0.2,0.8"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_completes_actions_options_and_files(tmp_path, capsys):
    assert cli.main(["completion", "bash"]) == 0
    script = tmp_path / "portal.bash"
    script.write_text(capsys.readouterr().out)
    (tmp_path / "data.csv").write_text("a\n1\n")
    probe = (f'source {script}; cd {tmp_path}; '
             'COMP_WORDS=(portal jobs ""); COMP_CWORD=2; _portal; echo "${COMPREPLY[*]}"; '
             'COMP_WORDS=(portal datasets upload da); COMP_CWORD=3; _portal; echo "${COMPREPLY[*]}"; '
             'COMP_WORDS=(portal train --alg); COMP_CWORD=2; _portal; echo "${COMPREPLY[*]}"')
    lines = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True).stdout.splitlines()
    assert lines[0].split()[:4] == ["list", "show", "wait", "cancel"]
    assert lines[1] == "data.csv"
    assert lines[2] == "--algorithm"
