"""gunicorn settings of the web processes (`make run`, and the README's production command).

Workers start warm: the master loads the app and its URL conf (the ML stack with it) before
forking, so no worker's first request spends seconds on imports. That matters because workers are
replaced regularly: after max_requests (with jitter, so that they do not all go at once) a worker
exits and a fresh one is forked from the warm master. Replacing them bounds what a long-lived
process accumulates (bench/scale.py: its pymalloc arenas grow with the tenants it has served, while
the objects it keeps are bounded by tenants/caches.py). The master opens no database connection.
"""

preload_app = True
max_requests = 5000
max_requests_jitter = 500


def when_ready(server):
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports every view module
