"""mlcore's management commands (rotate_keys has its own test module)."""

import io

import pytest
from django.core.management import call_command
from django_tenants.utils import tenant_context

from mlcore.models import Dataset, Job
from tests.mlcore.conftest import run_jobs

pytestmark = pytest.mark.django_db


def test_seed_demo_data_gives_each_demo_tenant_a_dataset_and_a_training_job(world):
    call_command("seed_demo_data", stdout=io.StringIO())
    call_command("seed_demo_data", stdout=io.StringIO())  # idempotent
    with tenant_context(world.acme):
        dataset = Dataset.objects.get()
        assert dataset.name == "Customer churn (demo)" and dataset.rows == 2000
        assert dataset.everyone_permission == "view"
        assert Job.objects.get().kind == "training"
    with tenant_context(world.globex):
        assert Dataset.objects.get().name == "Store sales (demo)"
    run_jobs("training")
    with tenant_context(world.acme):
        job = Job.objects.get()
        assert job.status == "succeeded", job.error
