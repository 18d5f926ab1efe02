"""Helpers for mlcore tests: datasets uploaded through the API, jobs run in-process."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile


def churn_csv(rows: int = 300, seed: int = 7) -> bytes:
    """A small, learnable classification dataset with numbers, a category and a boolean."""
    rng = np.random.default_rng(seed)
    lines = ["tenure,monthly,plan,autopay,churned"]
    for _ in range(rows):
        tenure = int(rng.integers(1, 72))
        monthly = round(float(rng.normal(60, 20)), 2)
        plan = rng.choice(["basic", "plus", "pro"])
        autopay = rng.choice(["yes", "no"])
        score = -0.05 * tenure + 0.03 * monthly + (0.8 if plan == "basic" else 0) + (0.7 if autopay == "no" else 0)
        churned = "yes" if score + rng.normal(0, 0.5) > 1.2 else "no"
        lines.append(f"{tenure},{monthly},{plan},{autopay},{churned}")
    return ("\n".join(lines) + "\n").encode()


def upload_dataset(client, content: bytes, filename: str = "data.csv", **fields) -> dict:
    response = client.post("/api/v1/datasets/", {"file": SimpleUploadedFile(filename, content), **fields},
                           format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


def run_jobs(kind: str = "training") -> int:
    """What a woken worker does, in this process (unit tests run handlers inline)."""
    from mlcore.jobs import queue_for
    from mlcore.jobs.runner import run_available

    return run_available(queue_for(kind))


@pytest.fixture
def churn(api_as):
    return upload_dataset(api_as("bob"), churn_csv(), filename="churn.csv")
