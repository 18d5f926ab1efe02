"""Samples of production versions' inputs, gathered where predictions happen, for monitoring.

Online predictions are the hot path: `online_samples.offer` only updates an in-process
reservoir (a few list operations per row, no I/O); a background thread hands the reservoirs
to mlcore.services.monitoring.samples_store every PORTAL_MONITORING_FLUSH_SECONDS, which
writes one encrypted object per version and counts it in the tenant's storage. Each reservoir
keeps a uniform sample of at most PORTAL_MONITORING_SAMPLE_ROWS rows of what one process saw
during one flush interval; samples_store then keeps a version's day within that many rows.
A process that dies loses at most one interval's sample: monitoring is statistical, the
prediction itself never waits for it nor fails because of it.

Batch jobs use `BatchSampler`: bottom-k sampling (each row gets a random key, the rows with the
smallest keys are kept), vectorised per chunk of the scoring loop.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from django.conf import settings

logger = logging.getLogger(__name__)


class _Reservoir:
    __slots__ = ("seen", "rows", "predictions")

    def __init__(self):
        self.seen = 0
        self.rows: list[dict] = []
        self.predictions: list = []


class OnlineSamples:
    """Per-process reservoirs keyed by (schema, version id, day)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._reservoirs: dict[tuple[str, int, str], _Reservoir] = {}
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def offer(self, schema_name: str, version_id: int, rows: list[dict], predictions: list) -> None:
        size = settings.PORTAL_MONITORING_SAMPLE_ROWS
        if size <= 0:
            return
        key = (schema_name, version_id, datetime.now(UTC).date().isoformat())
        with self._lock:
            reservoir = self._reservoirs.get(key)
            if reservoir is None:
                reservoir = self._reservoirs[key] = _Reservoir()
            for row, prediction in zip(rows, predictions, strict=False):
                reservoir.seen += 1
                if len(reservoir.rows) < size:
                    reservoir.rows.append(row)
                    reservoir.predictions.append(prediction)
                    continue
                slot = random.randrange(reservoir.seen)  # noqa: S311 - sampling, not secrecy
                if slot < size:
                    reservoir.rows[slot] = row
                    reservoir.predictions[slot] = prediction
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        self._pid = os.getpid()  # a forked worker needs its own thread
        self._thread = threading.Thread(target=self._run, name="monitoring-samples-flush", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from django.db import close_old_connections

        while True:
            time.sleep(settings.PORTAL_MONITORING_FLUSH_SECONDS)
            try:
                self.flush()
            except Exception:  # one bad flush must not end the thread; the sample is dropped
                logger.exception("could not store prediction samples")
            finally:
                close_old_connections()

    def discard(self) -> None:
        with self._lock:
            self._reservoirs = {}

    def flush(self) -> int:
        """Store what the reservoirs hold; returns the rows stored."""
        from tenants.models import Tenant

        from .services import monitoring

        with self._lock:
            taken, self._reservoirs = self._reservoirs, {}
        stored = 0
        tenants: dict[str, Tenant | None] = {}
        for (schema_name, version_id, day), reservoir in taken.items():
            if schema_name not in tenants:
                tenants[schema_name] = Tenant.objects.filter(schema_name=schema_name).first()
            tenant = tenants[schema_name]
            if tenant is None or not reservoir.rows:
                continue
            try:
                stored += monitoring.samples_store(
                    tenant=tenant, version_id=version_id, day=datetime.fromisoformat(day).date(),
                    rows=reservoir.rows, predictions=reservoir.predictions, source="online")
            except Exception:  # e.g. storage unwritable: other versions' samples still go
                logger.exception("could not store a version's online samples",
                                 extra={"tenant": tenant.slug, "model_version": version_id})
        return stored


online_samples = OnlineSamples()


class BatchSampler:
    """Uniform sample of a batch job's scored rows: `add` is called once per chunk."""

    def __init__(self, features: list[str], size: int, seed: int | None = None):
        self.features = features
        self.size = size
        self._rng = np.random.default_rng(seed)
        self._keys = np.empty(0)
        self._rows: list[dict] = []
        self._predictions: list = []

    def add(self, frame: pd.DataFrame, predictions) -> None:
        if self.size <= 0 or not len(frame):
            return
        keys = self._rng.random(len(frame))
        cut = np.sort(np.concatenate([self._keys, keys]))[: self.size][-1]
        chosen = np.flatnonzero(keys <= cut)
        if not len(chosen):
            return
        records = frame.iloc[chosen][self.features].to_dict("records")
        values = list(np.asarray(predictions)[chosen])
        all_keys = np.concatenate([self._keys, keys[chosen]])
        rows, preds = self._rows + [_plain(r) for r in records], self._predictions + [_value(v) for v in values]
        keep = np.argsort(all_keys, kind="stable")[: self.size]
        self._keys = all_keys[keep]
        self._rows = [rows[i] for i in keep]
        self._predictions = [preds[i] for i in keep]

    @property
    def rows(self) -> list[dict]:
        return self._rows

    @property
    def predictions(self) -> list:
        return self._predictions


def _value(value):
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    if isinstance(value, float) and value != value:
        return None
    return value if isinstance(value, int | float | str | bool) else str(value)


def _plain(record: dict) -> dict:
    """A row of coerced values as JSON values (missing values as None)."""
    return {name: (None if value is pd.NaT else _value(value)) for name, value in record.items()}
