"""The API's main resources as dataclasses (field names as in docs/api.md and the OpenAPI schema).

The API only ever adds fields within /api/v1/: keys this version of the client does not know are
kept in `raw`, the whole body as the server sent it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["Dataset", "Job", "Model", "ModelVersion", "OnlinePrediction", "Usage"]

T = TypeVar("T")

TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})


def from_api(cls: type[T], body: dict[str, Any]) -> T:
    """`cls` filled from an API body; unknown keys stay in `raw` only."""
    names = {f.name for f in dataclasses.fields(cls) if f.name != "raw"}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in body.items() if k in names}, raw=body)  # type: ignore[call-arg]


@dataclass
class Dataset:
    """An uploaded table. `columns` (the profile) is filled by `get` and `upload`, not by `list`."""

    id: int
    name: str = ""
    description: str = ""
    owner: str | None = None
    original_filename: str = ""
    format: str = ""
    rows: int = 0
    column_count: int = 0
    size_bytes: int = 0
    sha256: str = ""
    encoding: str | None = None
    shared_with_everyone: str = ""
    created_at: str = ""
    updated_at: str = ""
    columns: list[dict[str, Any]] | None = None
    permissions: list[str] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Job:
    """A training or prediction job. `progress` is 0-100; while running, `message` names the stage.

    A training job's `result` is `{model, model_version, version}`; a prediction job's
    `{rows_scored, rows_rejected, output_bytes}`.
    """

    id: int
    kind: str = ""
    status: str = ""
    progress: float = 0.0
    message: str = ""
    error: str = ""
    created_at: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    cpu_seconds: float = 0.0
    peak_memory_bytes: int = 0
    result: dict[str, Any] | None = None
    dataset: int | None = None
    created_by: str | None = None
    wait_reason: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


@dataclass
class ModelVersion:
    """One trained version of a model, with its `metrics`."""

    id: int
    model: int = 0
    version: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    features: list[str] = field(default_factory=list)
    target: str = ""
    task: str = ""
    algorithm: str = ""
    evaluation: dict[str, Any] | None = None
    dataset: int | None = None
    dataset_name: str = ""
    train_seconds: float = 0.0
    library_versions: dict[str, Any] | None = None
    classes: list[Any] | None = None
    feature_importance: Any = None
    job: int | None = None
    decision_threshold: float | None = None
    created_at: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Model:
    """A named model. `versions` holds `{id, version, metrics, algorithm, created_at}`, oldest
    first; `production_version` is a version number."""

    id: int
    name: str = ""
    description: str = ""
    task: str = ""
    owner: str | None = None
    production_version: int | None = None
    versions: list[dict[str, Any]] = field(default_factory=list)
    shared_with_everyone: str = ""
    created_at: str = ""
    updated_at: str = ""
    permissions: list[str] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def version_id(self, number: int | None = None) -> int:
        """The id of version `number` (default: the production version)."""
        wanted = self.production_version if number is None else number
        for v in self.versions:
            if v.get("version") == wanted:
                return int(v["id"])
        raise LookupError(f"model {self.id} has no version {wanted}")


@dataclass
class OnlinePrediction:
    """The answer to an online prediction of a list of rows."""

    model_version: int
    version: int
    predictions: list[Any]
    probabilities: list[dict[str, float]] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Usage:
    """The plan's `limits`, what the workspace uses (`usage`, same keys), and the caller's own
    `member_limits` / `member_usage` where an admin set some."""

    plan: str | None = None
    limits: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    period_start: str = ""
    member_limits: dict[str, Any] = field(default_factory=dict)
    member_usage: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
