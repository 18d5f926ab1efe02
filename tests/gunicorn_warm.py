"""gunicorn settings for the web servers tests start (tests/servers.py's WebServer, the browser
tests' server): production's (portal/gunicorn_conf.py), workers forked warm, so a worker's first
request does not spend a short --timeout on imports on a machine shared with other tests."""

from portal.gunicorn_conf import preload_app, when_ready, worker_exit  # noqa: F401 - gunicorn reads them
