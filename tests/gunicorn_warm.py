"""gunicorn settings for tests/servers.py's WebServer: workers that start warm.

The master loads the app and its URL conf (the ML stack with it) before forking, so a worker's
first request does not spend a short --timeout on imports, on a machine shared with other tests.
Respawned workers (after a kill) are forked warm too.
"""

preload_app = True


def when_ready(server):
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports every view module
