"""Online predictions: loaded models cached per worker process, keyed by tenant and version.

A warm call does no disk read, no decryption and no PostgreSQL statement. Entries are keyed by
(schema, version id) — primary keys repeat across tenants — and bounded in number and bytes.
Promoting a version or changing a model's sharing bumps the model's epoch in Redis; every process
compares it with the epoch it cached under and reloads what changed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from tenants import gate

_lock = threading.Lock()
_loaded: OrderedDict[tuple[str, int], object] = OrderedDict()
# (schema, model id) -> (model epoch, facts about the model needed on the hot path)
_models: dict[tuple[str, int], tuple[int, dict]] = {}


def forget_model(tenant, model_id: int) -> None:
    """Called after a promotion, a share change or a deletion has committed."""
    gate.bump_model_epoch(tenant.id, model_id)
    with _lock:
        _models.pop((tenant.schema_name, model_id), None)


def forget_all() -> None:
    with _lock:
        _loaded.clear()
        _models.clear()
