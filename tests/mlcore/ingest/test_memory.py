"""mlcore.ingest.memory: the processes that read uploads allocate Arrow memory from jemalloc.

pyarrow's own default here, mimalloc, made a worker reading a 200,000-row Parquet file grow by
68 MB instead of 38 MB (bench/parquet_memory.py): the default is chosen when pyarrow is imported,
so the check runs in fresh processes started the way the web and job workers start."""

import subprocess
import sys

import pytest
from django.conf import settings

from tests.servers import process_env

BACKEND = "import pyarrow as pa; print(pa.default_memory_pool().backend_name)"


@pytest.mark.parametrize("start", [
    "import portal.wsgi",                       # gunicorn: settings, then every app
    "from portal.celery import app; app.loader.import_default_modules()",  # a Celery worker
])
def test_a_worker_process_allocates_arrow_memory_from_jemalloc(start):
    env = {k: v for k, v in process_env().items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    output = subprocess.run([sys.executable, "-c", f"{start}; {BACKEND}"], env=env, check=True,
                            capture_output=True, text=True, cwd=settings.BASE_DIR, timeout=120).stdout
    assert output.strip().splitlines()[-1] == "jemalloc"


def test_an_operators_own_choice_of_allocator_is_kept():
    env = dict(process_env(), ARROW_DEFAULT_MEMORY_POOL="system")
    output = subprocess.run([sys.executable, "-c", f"import portal.wsgi; {BACKEND}"], env=env, check=True,
                            capture_output=True, text=True, cwd=settings.BASE_DIR, timeout=120).stdout
    assert output.strip().splitlines()[-1] == "system"
