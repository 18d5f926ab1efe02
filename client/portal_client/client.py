"""The client: `Client(url, token)`, with one attribute per group of resources.

    >>> from portal_client import Client
    >>> portal = Client("http://acme.localhost:8000", token="...")   # or PORTAL_URL / PORTAL_TOKEN
    >>> ds = portal.datasets.upload("churn.csv")
    >>> job = portal.training_jobs.start(dataset=ds, target="churned", algorithm="random_forest")
    >>> job = portal.jobs.wait(job)

Every request is retried on 429 and 503 (after the server's `Retry-After`), and on connection
errors when repeating it is safe (reads, deletes, and POSTs that carry an `Idempotency-Key`: each
creating call sends a fresh key and keeps it across its own retries; the server answers a retry
with the first answer, or 409 `idempotency-key-in-use` while the first still runs, which is
retried too).
"""

from __future__ import annotations

import io
import json
import os
import random
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeGuard

import httpx

from . import errors
from .progress import make_progress
from .types import Dataset, Job, Model, ModelVersion, OnlinePrediction, Usage, from_api

if TYPE_CHECKING:  # pandas is an optional extra
    import pandas as pd

__all__ = ["Client"]

API = "/api/v1"
ONLINE_MAX_ROWS = 1000  # the server's limit per online call (413 above it)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
CONTENT_TYPES = {".csv": "text/csv", ".tsv": "text/tab-separated-values", ".txt": "text/plain",
                 ".gz": "application/gzip", ".parquet": "application/vnd.apache.parquet"}

IdLike = int | str | Dataset | Job | Model | ModelVersion
Rows = list[dict[str, Any]]


def _id(obj: IdLike) -> int:
    if isinstance(obj, (Dataset, Job, Model, ModelVersion)):
        return int(obj.id)
    return int(obj)


def _json_default(value: Any) -> Any:
    """numpy scalars and timestamps inside rows given as dicts."""
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _is_dataframe(obj: Any) -> TypeGuard[pd.DataFrame]:
    return type(obj).__name__ == "DataFrame" and hasattr(obj, "to_csv")


def _connect_target(url: str) -> tuple[str, dict[str, str]]:
    """(the URL to connect to, extra headers). Names under `.localhost` are the loopback address
    (RFC 6761), but Python's resolver does not know them: connect to 127.0.0.1 and send the tenant's
    name in `Host`, which is what routes the request to the tenant."""
    parsed = httpx.URL(url)
    host = parsed.host
    if host == "localhost" or host.endswith(".localhost"):
        return str(parsed.copy_with(host="127.0.0.1")), {"Host": parsed.netloc.decode("ascii")}
    return str(parsed), {}


class _CountingReader(io.RawIOBase):
    """A binary file that reports how much of it was read (the upload's progress). httpx reads it
    in chunks while it sends, and seeks back to 0 when it sends again after a retry."""

    def __init__(self, file: BinaryIO, on_read: Callable[[int], None]):
        super().__init__()
        self.file, self.on_read, self.position = file, on_read, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self.file.read(size)
        self.position += len(chunk)
        self.on_read(self.position)
        return chunk

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = self.file.seek(offset, whence)
        return self.position

    def tell(self) -> int:
        return self.file.tell()

    def fileno(self) -> int:
        return self.file.fileno()


class Client:
    """A connection to one workspace (tenant) of the portal.

    `url` is the workspace's address (`http://acme.localhost:8000`, `https://acme.example.com`),
    `token` an API token (`Authorization: Bearer`). Both default to the environment variables
    `PORTAL_URL` and `PORTAL_TOKEN`. `max_retries` bounds the retries of one call; a `Retry-After`
    longer than `max_retry_wait` seconds is not waited for (the error is raised instead).
    """

    def __init__(self, url: str | None = None, token: str | None = None, *,
                 timeout: float = 60.0, max_retries: int = 5, max_retry_wait: float = 60.0,
                 transport: httpx.BaseTransport | None = None):
        url = url or os.environ.get("PORTAL_URL")
        token = token or os.environ.get("PORTAL_TOKEN")
        if not url:
            raise ValueError("No portal URL: pass url= or set PORTAL_URL")
        if not token:
            raise ValueError("No API token: pass token= or set PORTAL_TOKEN")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"The portal URL must start with http:// or https:// (got {url!r})")
        self.url = url.rstrip("/")
        base, headers = _connect_target(self.url)
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self._sleep: Callable[[float], None] = time.sleep
        self._http = httpx.Client(
            base_url=base, transport=transport, follow_redirects=False,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json",
                     "User-Agent": "portal-client/0.1", **headers})
        self.datasets = Datasets(self)
        self.training_jobs = TrainingJobs(self)
        self.jobs = Jobs(self)
        self.models = Models(self)
        self.prediction_jobs = PredictionJobs(self)

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- the one place requests are sent ------------------------------------------------------

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                json_body: Any = None, files: dict[str, Any] | None = None,
                data: dict[str, Any] | None = None, idempotent_create: bool = False,
                stream: bool = False) -> httpx.Response:
        """Send a request to `path` (under the workspace URL), retrying what may be retried.

        Raises the `PortalError` subclass matching the answer's problem for any 4xx/5xx.
        `idempotent_create` adds a fresh `Idempotency-Key`, kept across this call's retries.
        """
        headers: dict[str, str] = {}
        if idempotent_create:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        content = None
        if json_body is not None:
            content = json.dumps(json_body, default=_json_default).encode()
            headers["Content-Type"] = "application/json"
        attempt = 0
        while True:
            attempt += 1
            request = self._http.build_request(method, path, params=params, content=content,
                                               files=files, data=data, headers=headers)
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                if attempt > self.max_retries or not self._may_repeat(method, headers, exc):
                    raise errors.ServiceUnavailable(
                        {"type": "connection-error", "title": "Connection failed", "status": None,
                         "detail": f"Could not reach {self.url}: {exc or type(exc).__name__}"}) from exc
                self._sleep(self._backoff(attempt))
                continue
            if self._retryable_answer(response, headers) and attempt <= self.max_retries:
                wait = errors._retry_after(response)
                wait = self._backoff(attempt) if wait is None else wait
                if wait <= self.max_retry_wait:
                    response.close()
                    self._sleep(wait)
                    continue
            if response.is_error:
                response.read()
                response.close()
                raise errors.error_from_response(response)
            return response

    @staticmethod
    def _retryable_answer(response: httpx.Response, headers: dict[str, str]) -> bool:
        """429 and 503; and 409 `idempotency-key-in-use`: the first request with our key still
        runs on the server (we gave up on it after a timeout), so ask again for its answer."""
        if response.status_code in (429, 503):
            return True
        if response.status_code != 409 or "Idempotency-Key" not in headers:
            return False
        response.read()
        return str(errors.problem_of(response).get("type", "")).endswith("/idempotency-key-in-use")

    @staticmethod
    def _may_repeat(method: str, headers: dict[str, str], exc: Exception) -> bool:
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            return True  # nothing was sent
        return method.upper() in SAFE_METHODS or "Idempotency-Key" in headers

    @staticmethod
    def _backoff(attempt: int) -> float:
        base = min(30.0, 0.5 * 2 ** (attempt - 1))
        return float(base + random.uniform(0, base / 4))

    def get_json(self, path: str, **params: Any) -> dict[str, Any]:
        body: dict[str, Any] = self.request(
            "GET", path, params={k: v for k, v in params.items() if v is not None}).json()
        return body

    def paginate(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list, page after page (200 a page), as the server orders them."""
        query: dict[str, Any] = {"page_size": 200, **{k: v for k, v in params.items() if v is not None}}
        while True:
            body = self.request("GET", path, params=query).json()
            yield from body["results"]
            if not body.get("next"):
                return
            # `next` is absolute, built from our Host header: keep our base URL, take its query.
            query = dict(httpx.URL(body["next"]).params)

    # -- small resources ----------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        """`{user: {id, email}, tenant: {slug, name}, role}`."""
        return self.get_json(f"{API}/me/")

    def usage(self) -> Usage:
        """The plan's limits and what the workspace (and you) use of them."""
        return from_api(Usage, self.get_json(f"{API}/usage/"))


class _Group:
    def __init__(self, client: Client):
        self._client = client


class Datasets(_Group):
    """`/api/v1/datasets/`: list, upload, get, delete, download."""

    def list(self) -> Iterator[Dataset]:
        """Every dataset you may view (pages are fetched as you iterate)."""
        for item in self._client.paginate(f"{API}/datasets/"):
            yield from_api(Dataset, item)

    def get(self, dataset: IdLike) -> Dataset:
        """A dataset with its column profile."""
        return from_api(Dataset, self._client.get_json(f"{API}/datasets/{_id(dataset)}/"))

    def delete(self, dataset: IdLike) -> None:
        """Delete a dataset (its storage is freed at once)."""
        self._client.request("DELETE", f"{API}/datasets/{_id(dataset)}/")

    def upload(self, source: str | os.PathLike[str] | pd.DataFrame | BinaryIO, *,
               name: str | None = None, description: str | None = None,
               encoding: str | None = None, progress: bool = True) -> Dataset:
        """Upload a file (path or binary file object: CSV, TSV, gzip or Parquet) or a DataFrame.

        The file is streamed from disk (a DataFrame is first written to a temporary CSV file), with a
        progress bar on stderr unless `progress=False`. `name` defaults to the file's name.
        """
        if _is_dataframe(source):
            with tempfile.TemporaryDirectory(prefix="portal-upload-") as folder:
                path = Path(folder) / f"{name or 'dataframe'}.csv"
                source.to_csv(path, index=False)
                return self.upload(path, name=name or "dataframe", description=description,
                                   encoding=encoding, progress=progress)
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            with path.open("rb") as file:
                return self._send(file, path.name, name=name, description=description,
                                  encoding=encoding, progress=progress)
        filename = Path(getattr(source, "name", "") or "upload.csv").name
        return self._send(source, filename, name=name, description=description,  # type: ignore[arg-type]
                          encoding=encoding, progress=progress)

    def _send(self, file: BinaryIO, filename: str, *, name: str | None, description: str | None,
              encoding: str | None, progress: bool) -> Dataset:
        size = _size_of(file)
        bar = make_progress(f"Uploading {filename}", total=size, unit="B", enabled=progress)
        reader = _CountingReader(file, lambda done: bar.update_to(done))
        fields = {k: v for k, v in {"name": name, "description": description,
                                    "encoding": encoding}.items() if v is not None}
        content_type = CONTENT_TYPES.get(Path(filename).suffix.lower(), "application/octet-stream")
        try:
            response = self._client.request(
                "POST", f"{API}/datasets/", data=fields, idempotent_create=True,
                files={"file": (filename, reader, content_type)})
        finally:
            bar.close()
        return from_api(Dataset, response.json())

    def download(self, dataset: IdLike, path: str | os.PathLike[str], *, progress: bool = True) -> Path:
        """Save the original file to `path`."""
        return _download(self._client, f"{API}/datasets/{_id(dataset)}/download/", path, {}, progress)

    def preview(self, dataset: IdLike, limit: int = 20) -> dict[str, Any]:
        """`{columns, rows}`: the first `limit` rows (at most 100)."""
        return self._client.get_json(f"{API}/datasets/{_id(dataset)}/preview/", limit=limit)


class TrainingJobs(_Group):
    """`/api/v1/training-jobs/`."""

    def start(self, *, dataset: IdLike, target: str, algorithm: str, model_name: str | None = None,
              features: Iterable[str] | None = None, task: str | None = None,
              params: dict[str, Any] | None = None, evaluation: dict[str, Any] | None = None) -> Job:
        """Start training a model version; returns the queued job (wait for it with `jobs.wait`).

        `algorithm`: logistic_regression, linear_regression, ridge, random_forest,
        hist_gradient_boosting. `params` are the algorithm's hyperparameters. `model_name` defaults
        to the target's name; training again under an existing name adds the model's next version.
        """
        body: dict[str, Any] = {"dataset": _id(dataset), "target": target, "algorithm": algorithm,
                                "model_name": model_name or target}
        if features is not None:
            body["features"] = list(features)
        if task is not None:
            body["task"] = task
        if params:
            body["params"] = params
        if evaluation:
            body["evaluation"] = evaluation
        response = self._client.request("POST", f"{API}/training-jobs/", json_body=body,
                                        idempotent_create=True)
        return from_api(Job, response.json())


class Jobs(_Group):
    """`/api/v1/jobs/`: list, get, wait, cancel, and a prediction job's output."""

    def list(self, kind: str | None = None) -> Iterator[Job]:
        """Your jobs (every job for admins), newest first; `kind` is training or prediction."""
        for item in self._client.paginate(f"{API}/jobs/", kind=kind):
            yield from_api(Job, item)

    def get(self, job: IdLike) -> Job:
        return from_api(Job, self._client.get_json(f"{API}/jobs/{_id(job)}/"))

    def cancel(self, job: IdLike) -> Job:
        """Cancel a job: a queued job at once, a running one within seconds."""
        return from_api(Job, self._client.request("POST", f"{API}/jobs/{_id(job)}/cancel/").json())

    def wait(self, job: IdLike, *, timeout: float | None = None, progress: bool = True,
             raise_on_failure: bool = True, poll_interval: float = 0.5,
             max_poll_interval: float = 5.0) -> Job:
        """Poll until the job finishes, with a progress bar (percent and stage) on stderr.

        Polls every `poll_interval` seconds at first, backing off to `max_poll_interval`.
        Raises `JobFailed` if it ends failed or cancelled (unless `raise_on_failure=False`) and
        `WaitTimedOut` after `timeout` seconds.
        """
        job_id = _id(job)
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = poll_interval
        current = self.get(job_id)
        bar = make_progress(f"Job {job_id} ({current.kind})", total=100, enabled=progress)
        try:
            while True:
                bar.update_to(current.progress, status=current.message or current.status)
                if current.finished:
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    raise errors.WaitTimedOut(current, timeout or 0)
                pause = interval if deadline is None else max(0.0, min(interval, deadline - time.monotonic()))
                self._client._sleep(pause)
                interval = min(max_poll_interval, interval * 1.5)
                current = self.get(job_id)
        finally:
            bar.close()
        if raise_on_failure and not current.succeeded:
            raise errors.JobFailed(current)
        return current

    def download_result(self, job: IdLike, path: str | os.PathLike[str], *, format: str = "csv",
                        progress: bool = True) -> Path:
        """Save a prediction job's output (`csv` or `parquet`) to `path`: columns `row`, the id
        column if one was chosen, `prediction`, and `proba_<class>` for classifiers."""
        return _download(self._client, f"{API}/jobs/{_id(job)}/result/", path,
                         {"format": format}, progress)

    def result_frame(self, job: IdLike) -> pd.DataFrame:
        """A prediction job's output as a DataFrame (needs the `pandas` extra)."""
        import pandas as pd

        response = self._client.request("GET", f"{API}/jobs/{_id(job)}/result/", params={"format": "csv"})
        return pd.read_csv(io.BytesIO(response.content))

    def receipt(self, job: IdLike) -> dict[str, Any]:
        """The signed receipt binding a prediction job's input, model version and output."""
        return self._client.get_json(f"{API}/jobs/{_id(job)}/receipt/")


class Models(_Group):
    """`/api/v1/models/` and `/api/v1/model-versions/`: list, metrics, promote, predict online."""

    def list(self) -> Iterator[Model]:
        """Every model you may view, each with its versions and production version."""
        for item in self._client.paginate(f"{API}/models/"):
            yield from_api(Model, item)

    def get(self, model: IdLike) -> Model:
        return from_api(Model, self._client.get_json(f"{API}/models/{_id(model)}/"))

    def version(self, version: IdLike) -> ModelVersion:
        """A model version by its id: metrics, parameters, features, classes..."""
        return from_api(ModelVersion, self._client.get_json(f"{API}/model-versions/{_id(version)}/"))

    def promote(self, version: IdLike) -> Model:
        """Make a version (by id) its model's production version; returns the model."""
        response = self._client.request("POST", f"{API}/model-versions/{_id(version)}/promote/")
        return from_api(Model, response.json())

    def predict(self, model: IdLike, rows: pd.DataFrame | Rows, *,
                version: int | None = None) -> Any:
        """Predict rows online with the production version (or version number `version`).

        Given a DataFrame, returns a DataFrame with the same index and the columns `prediction` and,
        for classifiers, `proba_<class>`; given a list of dicts, an `OnlinePrediction`. More than
        1,000 rows are sent in several calls, all to the version that answered the first.
        """
        records = _records(rows)
        answers: list[dict[str, Any]] = []
        for start in range(0, max(1, len(records)), ONLINE_MAX_ROWS):
            body: dict[str, Any] = {"rows": records[start:start + ONLINE_MAX_ROWS]}
            if version is not None:
                body["version"] = version
            answer = self._client.request("POST", f"{API}/models/{_id(model)}/predict/",
                                          json_body=body).json()
            version = answer["version"]
            answers.append(answer)
        merged = dict(answers[0])
        merged["predictions"] = [p for a in answers for p in a["predictions"]]
        if "probabilities" in merged:
            merged["probabilities"] = [p for a in answers for p in a.get("probabilities") or []]
        result = from_api(OnlinePrediction, merged)
        return _prediction_frame(rows, result) if _is_dataframe(rows) else result


class PredictionJobs(_Group):
    """`/api/v1/prediction-jobs/`: score a whole dataset as a job."""

    def start(self, *, dataset: IdLike, model: IdLike | None = None,
              model_version: IdLike | None = None, id_column: str | None = None) -> Job:
        """Start scoring `dataset` with a model's production version or a given version id."""
        body: dict[str, Any] = {"dataset": _id(dataset)}
        if model is not None:
            body["model"] = _id(model)
        if model_version is not None:
            body["model_version"] = _id(model_version)
        if id_column:
            body["id_column"] = id_column
        response = self._client.request("POST", f"{API}/prediction-jobs/", json_body=body,
                                        idempotent_create=True)
        return from_api(Job, response.json())

    def run(self, *, model: IdLike, data: IdLike | str | os.PathLike[str] | pd.DataFrame,
            out: str | os.PathLike[str], id_column: str | None = None, format: str = "csv",
            timeout: float | None = None, progress: bool = True) -> Job:
        """Upload `data` (a path or DataFrame; a dataset or its id is used as is), score it with the
        model's production version, wait, and save the output to `out`. Returns the finished job."""
        if isinstance(data, (str, os.PathLike)) or _is_dataframe(data):
            data = self._client.datasets.upload(data, progress=progress)
        job = self.start(dataset=data, model=model, id_column=id_column)  # type: ignore[arg-type]
        job = self._client.jobs.wait(job, timeout=timeout, progress=progress)
        self._client.jobs.download_result(job, out, format=format, progress=progress)
        return job


def _size_of(file: BinaryIO) -> int | None:
    """The file's size without reading it: a real file's, or a seekable object's (io.BytesIO)."""
    try:
        return os.fstat(file.fileno()).st_size
    except (AttributeError, OSError):
        try:
            position = file.tell()
            size = file.seek(0, os.SEEK_END)
            file.seek(position)
            return size
        except (AttributeError, OSError):
            return None


def _records(rows: Any) -> list[dict[str, Any]]:
    if _is_dataframe(rows):
        # pandas' own JSON writer: NaN -> null, numpy types and timestamps (ISO 8601) handled.
        records: list[dict[str, Any]] = json.loads(rows.to_json(orient="records", date_format="iso"))
        return records
    records = [*rows]
    if not all(isinstance(r, dict) for r in records):
        raise TypeError("rows must be a DataFrame or a list of dicts {column: value}")
    return records


def _prediction_frame(rows: pd.DataFrame, result: OnlinePrediction) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame({"prediction": result.predictions}, index=rows.index)
    if result.probabilities:
        probabilities = pd.DataFrame(result.probabilities, index=rows.index)
        probabilities.columns = [f"proba_{c}" for c in probabilities.columns]
        frame = frame.join(probabilities)
    frame.attrs.update(model_version=result.model_version, version=result.version)
    return frame


def _download(client: Client, path: str, out: str | os.PathLike[str], params: dict[str, Any],
              progress: bool) -> Path:
    """Stream an answer to a file next to `out`, renamed into place when complete."""
    target = Path(out)
    partial = target.with_name(target.name + ".part")
    response = client.request("GET", path, params=params, stream=True)
    try:
        size = int(response.headers["Content-Length"]) if "Content-Length" in response.headers else None
        bar = make_progress(f"Downloading {target.name}", total=size, unit="B", enabled=progress)
        done = 0
        with partial.open("wb") as file:
            for chunk in response.iter_bytes():
                file.write(chunk)
                done += len(chunk)
                bar.update_to(done)
        bar.close()
        partial.replace(target)
    finally:
        response.close()
        partial.unlink(missing_ok=True)
    return target

