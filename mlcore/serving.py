"""Online predictions' caches: loaded models and members' rights, per worker process.

The operation itself (rights, version, quota, metering) is mlcore.services.predictions.online_predict.

A warm call does no disk read, no decryption and no PostgreSQL statement: the request gate
(tenants.limits.gate.check, one Redis round trip) returns the tenant's and user's epochs, and every
cached fact here was built under those epochs. Promoting a version, changing a model's sharing or
deleting it bumps the tenant's epoch (rare events), so each process rebuilds what it cached for
that tenant on its next request. Loaded predictors are keyed by (schema, version id) — primary
keys repeat across tenants — and bounded in number and bytes; a version never changes once
trained, so a predictor is dropped only to make room.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from django.conf import settings

from tenants.accounts.access import MembershipInfo
from tenants.caches import cache_put
from tenants.limits import gate

from . import storage
from .models import ModelVersion
from .selectors import get_model_for_user
from .storage import MODELS

_lock = threading.Lock()
_predictors: OrderedDict[tuple[str, int], tuple[int, object]] = OrderedDict()  # -> (bytes, predictor)
_grants: dict[tuple[str, int, int], tuple[tuple[int, int], ModelAccess]] = {}


@dataclass(frozen=True)
class ModelAccess:
    """What a member may do with a model, and which version serves by default."""

    model_id: int
    name: str
    production_version_id: int | None
    actions: frozenset[str]
    versions: dict[int, int]  # version number -> version id
    thresholds: dict[int, float] = field(default_factory=dict)  # version id -> decision threshold

    @property
    def version_numbers(self) -> dict[int, int]:
        return {version_id: number for number, version_id in self.versions.items()}


def forget_model(tenant, model_id: int) -> None:
    """Called after a promotion, a threshold or share change or a deletion has committed."""
    gate.bump_tenant_epoch(tenant.id)
    with _lock:
        for key in [k for k in _grants if k[0] == tenant.schema_name and k[1] == model_id]:
            _grants.pop(key, None)


def forget_all() -> None:
    with _lock:
        _predictors.clear()
        _grants.clear()


def model_access(*, tenant, membership: MembershipInfo, user_id: int, model_id: int,
                 epochs: tuple[int, int]) -> ModelAccess:
    """The member's rights on the model (404/403 as the access function decides), cached."""
    key = (tenant.schema_name, int(model_id), user_id)
    cached = _grants.get(key)
    if cached is not None and cached[0] == epochs:
        return cached[1]
    model = get_model_for_user(membership=membership, user_id=user_id, model_id=model_id)
    rows = list(model.versions.values_list("version", "id", "decision_threshold"))  # one query for both
    access = ModelAccess(model_id=model.id, name=model.name,
                         production_version_id=model.production_version_id,
                         actions=model.allowed_actions,
                         versions={number: pk for number, pk, _ in rows},
                         thresholds={pk: t for _, pk, t in rows if t is not None})
    with _lock:
        cache_put(_grants, key, (epochs, access))
    return access


def predictor(tenant, version_id: int):
    """The loaded model of a version (ONNX when it was checked equal, else scikit-learn)."""
    key = (tenant.schema_name, version_id)
    with _lock:
        hit = _predictors.get(key)
        if hit is not None:
            _predictors.move_to_end(key)
            return hit[1]
    loaded, size = _load(tenant, version_id)
    with _lock:
        _predictors[key] = (size, loaded)
        _trim()
    return loaded


def _load(tenant, version_id: int):
    from . import ml

    version = ModelVersion.objects.get(pk=version_id)
    with storage.open_object(tenant, MODELS, str(version.artifact_object_id)) as stream:
        pipeline = ml.load_pipeline(stream.read(), version.artifact_sha256)
    onnx = None
    if version.onnx_object_id:
        with storage.open_object(tenant, MODELS, str(version.onnx_object_id)) as stream:
            onnx = ml.load_onnx(stream.read(), version.onnx_sha256)
    return (ml.OnlinePredictor(pipeline, version.column_types, onnx, prepared_means=version.prepared_means or None),
            version.stored_bytes)


def _trim() -> None:
    """Keep at most PORTAL_MODEL_CACHE_ENTRIES models and ~PORTAL_MODEL_CACHE_BYTES per process."""
    limit_n, limit_bytes = settings.PORTAL_MODEL_CACHE_ENTRIES, settings.PORTAL_MODEL_CACHE_BYTES
    while len(_predictors) > 1 and (len(_predictors) > limit_n
                                    or sum(size for size, _ in _predictors.values()) > limit_bytes):
        _predictors.popitem(last=False)


def cached_versions(tenant) -> list[int]:
    """For tests and the operator: which versions this process holds for a tenant."""
    return [version_id for schema, version_id in _predictors if schema == tenant.schema_name]
