"""gunicorn settings of the web processes (`make run`, and the README's production command).

Workers start warm: the master loads the app and its URL conf (the ML stack with it) before
forking, so no worker's first request spends seconds on imports. That matters because workers are
replaced regularly: after max_requests (with jitter, so that they do not all go at once) a worker
exits and a fresh one is forked from the warm master. Replacing them bounds what a long-lived
process accumulates (bench/scale.py: its pymalloc arenas grow with the tenants it has served, while
the objects it keeps are bounded by tenants/caches.py). The master opens no database connection.
A worker that leaves gracefully (replaced, restarted, stopped) first writes what it buffers.
"""

import logging

preload_app = True
max_requests = 5000
max_requests_jitter = 500


def when_ready(server):
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports every view module


def worker_exit(server, worker):
    """Before a worker process ends gracefully: the monitoring samples of online predictions it
    holds (flushed every PORTAL_MONITORING_FLUSH_SECONDS otherwise) are stored, not dropped, so
    recycling workers every ~5,000 requests loses none. A worker killed outright still loses at
    most one flush interval of samples (they are a sample, not a record)."""
    from mlcore.sampling import online_samples

    try:
        stored = online_samples.flush()
    except Exception:  # leaving anyway: say so, do not hang the exit
        logging.getLogger("portal.web").exception("monitoring samples not stored at worker exit")
        return
    if stored:
        logging.getLogger("portal.web").info("monitoring samples stored at worker exit",
                                             extra={"rows": stored})
