import os

# One thread per numeric library in every process: jobs run one core each (the scheduler shares
# the machine), and forked job processes must not inherit BLAS/OpenMP thread pools (a child of a
# process with live pool threads can hang in its first BLAS call).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from .celery import app as celery_app  # noqa: E402

__all__ = ["celery_app"]
