"""Relationships between a dataset's columns, for its page (mlcore.ml.relationships).

Stored datasets never change (a new upload is a new object), so a result is cached by the
dataset's object id and target for a day: the first view reads the file once, later ones are free.
"""

from __future__ import annotations

from django.core.cache import cache
from django.core.exceptions import ValidationError

from tenants.models import Tenant

from .. import storage
from ..ml.data import iter_frames
from ..ml.relationships import MAX_NUMBER_COLUMNS, relationships
from ..models import Dataset
from ..storage import DATASETS
from .datasets import dataset_profile

RELATIONSHIP_ROWS = 200_000
TARGET_TYPES = ("number", "category", "boolean")
CACHE_SECONDS = 24 * 3600


def relationship_targets(*, tenant: Tenant, dataset: Dataset) -> list[dict]:
    """The columns a page may compare the others against."""
    return [c for c in dataset_profile(tenant=tenant, dataset=dataset)["columns"] if c["type"] in TARGET_TYPES]


def dataset_relationships(*, tenant: Tenant, dataset: Dataset, target: str | None) -> dict:
    types = {c["name"]: c["type"] for c in dataset_profile(tenant=tenant, dataset=dataset)["columns"]}
    if target is not None and types.get(target) not in TARGET_TYPES:
        raise ValidationError({"target": f"'{target}' is not a number, category or yes/no column of "
                                         f"{dataset.name}."})
    key = f"relationships:{tenant.schema_name}:{dataset.object_id}:{target or ''}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    numbers = [name for name, kind in types.items() if kind == "number"]
    needed = list(dict.fromkeys(numbers[:MAX_NUMBER_COLUMNS] + ([target] if target else [])))
    with storage.open_object(tenant, DATASETS, str(dataset.object_id)) as stream:
        frames = (frame for frame, _ in iter_frames(stream, dataset.format, needed, types,
                                                    encoding=dataset.encoding))
        result = relationships(frames, numbers, target, types.get(target), RELATIONSHIP_ROWS)
    result["more_numbers"] = max(0, len(numbers) - MAX_NUMBER_COLUMNS)
    cache.set(key, result, CACHE_SECONDS)
    return result
