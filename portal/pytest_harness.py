"""The test harness's start-up (a pytest plugin, `-p portal.pytest_harness` in pyproject.toml).

In the portal package rather than tests/ because `-p` imports it before pytest puts the project on
sys.path (a bare `.venv/bin/pytest` would not find tests/); nothing but pytest imports it.

Runs before pytest-django loads the settings, which only read the environment and var/: starts the
embedded PostgreSQL and Redis when DATABASE_URL / REDIS_URL are unset (through the same
`embedded.provide` as the launcher), generates the development secrets under var/, and names the
run (PORTAL_TEST_RUN), all through os.environ so that pytest-xdist workers, and the servers and
Celery workers that tests start, inherit the same values. Whatever it started it stops at the end.
"""

from __future__ import annotations

import os

import pytest

from portal import embedded

_STARTED = pytest.StashKey[list[str]]()


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return  # the controller did all of this, and the worker inherited its environment
    os.environ.setdefault("PORTAL_TEST_RUN", str(os.getpid()))
    env = dict(os.environ)
    early_config.stash[_STARTED] = embedded.provide(env, say=lambda message: None)
    os.environ.update({name: env[name] for name in ("DATABASE_URL", "REDIS_URL")})


def pytest_unconfigure(config):
    embedded.release(config.stash.get(_STARTED, []))
