"""The job page while a job runs: the stage it is in, the time spent and left, CPU and memory."""

from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from mlcore.jobs.runner import _cpu_ms, report_usage
from mlcore.models import Job
from tenants.models import JobTicket
from tests.mlcore.conftest import run_jobs
from tests.mlcore.test_model_pages import train_via_page

pytestmark = pytest.mark.django_db

STAGES = ["Reading data", "Checking columns", "Evaluating (hold-out split)", "Training final model",
          "Computing feature importance"]


def _job_id(response) -> int:
    return int(re.match(r"^/jobs/(\d+)/$", response["Location"]).group(1))


def test_every_training_stage_reaches_the_job_page_even_when_stages_follow_quickly(page_as, churn):
    bob = page_as("bob")
    train_via_page(bob, churn["id"])
    with CaptureQueriesContext(connection) as queries:
        run_jobs()
    written = [q["sql"] for q in queries.captured_queries
               if q["sql"].startswith('UPDATE "mlcore_job"') and '"message"' in q["sql"]]
    for stage in STAGES:
        assert any(f"'{stage}'" in sql for sql in written), f"stage {stage!r} never written"


def test_the_progress_of_a_stage_tracks_the_rows_it_fits_on():
    from mlcore.ml.spec import TrainSpec
    from mlcore.ml.training import stage_fractions

    holdout = TrainSpec(target="y", features=["x"], task="regression", algorithm="ridge",
                        evaluation={"method": "holdout", "test_size": 0.2})
    kfold = TrainSpec(target="y", features=["x"], task="regression", algorithm="ridge",
                      evaluation={"method": "kfold", "folds": 5})
    # Hold-out fits on 80% of the rows, then the final model on all: 0.8 of 1.8 of the fitting.
    assert stage_fractions(holdout)["final"] == pytest.approx(0.05 + 0.85 * 0.8 / 1.8)
    # Five folds fit on 4/5 of the rows each (4 datasets' worth), then the final model once.
    assert stage_fractions(kfold)["final"] == pytest.approx(0.05 + 0.85 * 4 / 5)


def test_a_running_job_shows_its_time_so_far_the_time_left_cpu_and_memory(page_as, churn, world):
    bob = page_as("bob")
    job_id = _job_id(train_via_page(bob, churn["id"]))
    Job.objects.filter(pk=job_id).update(status=Job.Status.RUNNING, progress=40.0,
                                         message="Evaluating (hold-out split)",
                                         started_at=timezone.now() - timedelta(seconds=30))
    ticket = JobTicket.objects.get(tenant=world.acme, job_id=job_id)
    report_usage(ticket, cpu_ms=12_340, peak_memory_bytes=52_428_800)
    html = bob.get(f"/jobs/{job_id}/status/").content.decode()
    assert "Evaluating (hold-out split)" in html
    assert re.search(r'data-testid="job-elapsed">3[0-2] s<', html)
    # 40% done in 30 s: 60% left takes about 45 s more.
    assert 'data-testid="job-remaining">about 45 s<' in html
    assert 'data-testid="job-cpu">12.34 s<' in html
    assert 'data-testid="job-memory">52.4 MB<' in html or 'data-testid="job-memory">50.0 MB<' in html
    assert 'hx-trigger="every 1s"' in html  # and it keeps updating


def test_a_job_just_started_says_it_is_still_estimating(page_as, churn):
    bob = page_as("bob")
    job_id = _job_id(train_via_page(bob, churn["id"]))
    Job.objects.filter(pk=job_id).update(status=Job.Status.RUNNING, progress=1.8, message="Checking columns",
                                         started_at=timezone.now() - timedelta(seconds=1))
    html = bob.get(f"/jobs/{job_id}/status/").content.decode()
    assert 'data-testid="job-remaining">estimating…<' in html
    assert 'data-testid="job-cpu">measuring…<' in html


def test_a_finished_job_shows_how_long_it_took(page_as, churn):
    bob = page_as("bob")
    job_id = _job_id(train_via_page(bob, churn["id"]))
    run_jobs()
    html = bob.get(f"/jobs/{job_id}/").content.decode()
    assert re.search(r"<dt>Took</dt><dd data-testid=\"job-elapsed\">[\d.]+ s<", html)
    assert 'data-testid="job-remaining"' not in html


def test_the_worker_reads_a_processes_cpu_time_from_the_kernel():
    assert _cpu_ms(os.getpid()) > 0
    assert _cpu_ms(2**22 + 12345) == 0  # no such process: nothing, not an error
