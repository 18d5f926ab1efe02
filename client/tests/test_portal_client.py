"""The client against httpx.MockTransport: error mapping, retries, keys, pagination, uploads,
online predictions and waiting. The real server is exercised by tests/test_client_e2e.py."""

from __future__ import annotations

import io
import json

import httpx
import pandas as pd
import pytest
from portal_client import (
    AuthenticationFailed,
    Client,
    Conflict,
    JobFailed,
    NotFound,
    PermissionDenied,
    PortalError,
    PreconditionFailed,
    QuotaExceeded,
    RateLimited,
    ServiceUnavailable,
    TooLarge,
    ValidationFailed,
    WaitTimedOut,
)

URL = "http://acme.localhost:8000"


def problem(status: int, detail: str, slug: str | None = None, **extra) -> httpx.Response:
    body = {"type": f"/problems/{slug}" if slug else "about:blank", "title": "T", "status": status,
            "detail": detail, **extra}
    return httpx.Response(status, json=body, headers={"Content-Type": "application/problem+json"})


class Server:
    """Answers requests in order from a list of responses (or callables), recording them."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer(request) if callable(answer) else answer


def client_for(server: Server, **kwargs) -> tuple[Client, list[float]]:
    client = Client(URL, "tok", transport=httpx.MockTransport(server), **kwargs)
    slept: list[float] = []
    client._sleep = slept.append
    return client, slept


def job(status: str, progress: float = 0, **extra) -> dict:
    return {"id": 7, "kind": "training", "status": status, "progress": progress, "message": status,
            "error": "", "result": None, **extra}


def test_a_quota_refusal_is_quota_exceeded_with_the_problem_details():
    client, _ = client_for(Server(problem(403, "Datasets: 5 of 5 used.", "quota-exceeded", quota="datasets")))
    with pytest.raises(QuotaExceeded) as caught:
        client.datasets.get(3)
    error = caught.value
    assert (error.status, error.type, error.detail) == (403, "/problems/quota-exceeded", "Datasets: 5 of 5 used.")
    assert error.problem["quota"] == "datasets"
    assert str(error) == "Datasets: 5 of 5 used. (403)"


def test_validation_errors_name_their_fields():
    errors = [{"field": "target", "message": "No column 'x'."}]
    client, _ = client_for(Server(problem(422, "No column 'x'.", "training-refused", errors=errors)))
    with pytest.raises(ValidationFailed) as caught:
        client.training_jobs.start(dataset=1, target="x", algorithm="ridge")
    assert caught.value.fields == {"target": "No column 'x'."}


def test_an_answer_that_is_not_a_problem_still_raises_with_its_status():
    client, _ = client_for(Server(httpx.Response(502, text="<html>Bad gateway</html>")))
    with pytest.raises(PortalError) as caught:
        client.usage()
    assert caught.value.status == 502 and "Bad gateway" in caught.value.detail


def test_429_and_503_are_retried_after_retry_after():
    ok = httpx.Response(200, json={"plan": "team", "limits": {}, "usage": {}, "period_start": "",
                                   "member_limits": {}, "member_usage": {}})
    limited = problem(429, "Slow down", "rate-limited")
    limited.headers["Retry-After"] = "2"
    down = problem(503, "Redis down", "service-unavailable")
    down.headers["Retry-After"] = "5"
    client, slept = client_for(Server(limited, down, ok))
    assert client.usage().plan == "team"
    assert slept == [2.0, 5.0]


def test_retries_are_bounded():
    server = Server(*[problem(503, "down", "service-unavailable")] * 4)
    client, slept = client_for(server, max_retries=3)
    with pytest.raises(ServiceUnavailable):
        client.me()
    assert len(server.requests) == 4 and len(slept) == 3


def test_a_retry_after_longer_than_allowed_is_not_waited_for():
    limited = problem(429, "Slow down", "rate-limited")
    limited.headers["Retry-After"] = "600"
    client, slept = client_for(Server(limited), max_retry_wait=60)
    with pytest.raises(RateLimited) as caught:
        client.me()
    assert caught.value.retry_after == 600 and slept == []


def test_creating_posts_carry_one_idempotency_key_across_their_retries():
    server = Server(httpx.ConnectError("refused"), httpx.ReadError("reset"),
                    httpx.Response(202, json=job("queued")), httpx.Response(202, json=job("queued")))
    client, _ = client_for(server)
    client.training_jobs.start(dataset=1, target="y", algorithm="ridge")
    client.prediction_jobs.start(dataset=1, model=2)
    keys = [r.headers.get("Idempotency-Key") for r in server.requests]
    assert keys[0] and keys[0] == keys[1] == keys[2] and keys[3] and keys[3] != keys[0]
    assert json.loads(server.requests[2].content) == {"dataset": 1, "target": "y", "algorithm": "ridge",
                                                      "model_name": "y"}


def test_a_retry_that_finds_the_first_request_still_running_asks_again_with_the_same_key():
    in_use = problem(409, "A request with this key is still running.", "idempotency-key-in-use")
    in_use.headers["Retry-After"] = "1"
    server = Server(httpx.ReadTimeout("slow"), in_use, httpx.Response(202, json=job("queued")))
    client, slept = client_for(server)
    assert client.prediction_jobs.start(dataset=1, model=2).status == "queued"
    assert len({r.headers["Idempotency-Key"] for r in server.requests}) == 1
    assert slept[1] == 1.0


def test_a_key_whose_first_request_was_interrupted_is_a_conflict():
    server = Server(problem(409, "Check, then use a new key.", "idempotency-key-interrupted"))
    client, _ = client_for(server)
    with pytest.raises(Conflict):
        client.training_jobs.start(dataset=1, target="y", algorithm="ridge")
    assert len(server.requests) == 1


def test_a_post_without_a_key_is_not_repeated_after_it_may_have_been_sent():
    server = Server(httpx.ReadError("reset"))
    client, _ = client_for(server)
    with pytest.raises(ServiceUnavailable):
        client.models.predict(2, [{"a": 1}])
    assert len(server.requests) == 1


def test_reads_are_repeated_after_a_connection_error():
    server = Server(httpx.ReadError("reset"), httpx.Response(200, json={"role": "member"}))
    client, _ = client_for(server)
    assert client.me() == {"role": "member"}


def test_a_localhost_workspace_is_reached_on_the_loopback_address_with_its_host_name():
    server = Server(httpx.Response(200, json={}))
    client, _ = client_for(server)
    client.me()
    request = server.requests[0]
    assert request.url.host == "127.0.0.1" and request.headers["Host"] == "acme.localhost:8000"
    assert request.headers["Authorization"] == "Bearer tok"


def test_lists_follow_every_page():
    page1 = {"count": 3, "next": "http://acme.localhost:8000/api/v1/datasets/?page=2&page_size=2",
             "previous": None, "results": [{"id": 1}, {"id": 2}]}
    page2 = {"count": 3, "next": None, "previous": "x", "results": [{"id": 3}]}
    server = Server(httpx.Response(200, json=page1), httpx.Response(200, json=page2))
    client, _ = client_for(server)
    assert [d.id for d in client.datasets.list()] == [1, 2, 3]
    assert server.requests[1].url.params["page"] == "2"
    assert server.requests[1].url.host == "127.0.0.1"


def test_an_upload_streams_the_file_with_its_length_and_shows_progress(tmp_path, capsys):
    path = tmp_path / "churn.csv"
    path.write_text("a,b\n" + "1,2\n" * 50_000)

    def created(request):
        assert int(request.headers["Content-Length"]) > path.stat().st_size
        assert b'filename="churn.csv"' in request.content and b"1,2\n1,2" in request.content
        return httpx.Response(201, json={"id": 5, "name": "churn", "rows": 50_000, "columns": []})

    server = Server(created)
    client, _ = client_for(server)
    dataset = client.datasets.upload(path, name="churn")
    assert (dataset.id, dataset.rows) == (5, 50_000)
    assert server.requests[0].headers["Idempotency-Key"]
    assert "Uploading churn.csv" in capsys.readouterr().err


def test_an_in_memory_file_is_uploaded_with_its_length():
    def created(request):
        assert request.headers["Content-Length"] == str(len(request.content))
        assert b'filename="rows.csv"' in request.content and b"a,b\n1,2\n" in request.content
        return httpx.Response(201, json={"id": 8, "name": "rows"})

    buffer = io.BytesIO(b"a,b\n1,2\n")
    buffer.name = "rows.csv"
    client, _ = client_for(Server(created))
    assert client.datasets.upload(buffer, progress=False).id == 8


def test_a_dataframe_is_uploaded_as_csv(capsys):
    def created(request):
        assert b'filename="scores.csv"' in request.content
        assert b"x,y\n1,a\n" in request.content.replace(b"\r\n", b"\n")
        return httpx.Response(201, json={"id": 6, "name": "scores"})

    client, _ = client_for(Server(created))
    assert client.datasets.upload(pd.DataFrame({"x": [1], "y": ["a"]}), name="scores", progress=False).id == 6
    assert capsys.readouterr().err == ""


def test_online_predictions_of_a_dataframe_come_back_as_a_dataframe_in_pieces_of_1000_rows():
    def answer(request):
        body = json.loads(request.content)
        n = len(body["rows"])
        return httpx.Response(200, json={"model_version": 9, "version": body.get("version") or 3,
                                         "predictions": ["yes"] * n,
                                         "probabilities": [{"no": 0.25, "yes": 0.75}] * n})

    server = Server(answer, answer)
    client, _ = client_for(server)
    frame = pd.DataFrame({"x": range(1500), "z": [None] * 1500}, index=range(100, 1600))
    result = client.models.predict(2, frame)
    assert list(result.columns) == ["prediction", "proba_no", "proba_yes"]
    assert list(result.index) == list(frame.index) and result.attrs["version"] == 3
    first, second = (json.loads(r.content) for r in server.requests)
    assert len(first["rows"]) == 1000 and "version" not in first and first["rows"][0] == {"x": 0, "z": None}
    assert len(second["rows"]) == 500 and second["version"] == 3


def test_waiting_polls_with_backoff_until_the_job_succeeds():
    server = Server(*(httpx.Response(200, json=j) for j in
                      [job("queued"), job("running", 40), job("running", 80), job("succeeded", 100)]))
    client, slept = client_for(server)
    done = client.jobs.wait(7, progress=False)
    assert done.succeeded and slept == [0.5, 0.75, 1.125]


def test_waiting_for_a_failed_job_raises_job_failed():
    client, _ = client_for(Server(httpx.Response(200, json=job("failed", error="Out of memory"))))
    with pytest.raises(JobFailed) as caught:
        client.jobs.wait(7, progress=False)
    assert caught.value.job.error == "Out of memory" and "Out of memory" in str(caught.value)


def test_waiting_gives_up_after_the_timeout():
    client, _ = client_for(Server(httpx.Response(200, json=job("running", 10))))
    with pytest.raises(WaitTimedOut):
        client.jobs.wait(7, timeout=0, progress=False)


def test_a_missing_url_or_token_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("PORTAL_URL", raising=False)
    monkeypatch.setenv("PORTAL_TOKEN", "x")
    with pytest.raises(ValueError, match="PORTAL_URL"):
        Client()
    with pytest.raises(ValueError, match="http:// or https://"):
        Client("acme.localhost:8000")


@pytest.mark.parametrize(("status", "slug", "error"), [
    (404, None, NotFound), (401, None, AuthenticationFailed), (403, None, PermissionDenied),
    (409, "conflict", Conflict), (412, None, PreconditionFailed), (413, None, TooLarge),
    (413, "quota-exceeded", QuotaExceeded), (400, None, ValidationFailed),
])
def test_each_status_maps_to_its_exception(status, slug, error):
    client, _ = client_for(Server(problem(status, "Refused.", slug)))
    with pytest.raises(error) as caught:
        client.jobs.get(1)
    assert (caught.value.status, caught.value.detail) == (status, "Refused.")
