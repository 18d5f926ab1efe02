"""portal/pytest_harness.py: what every pytest process of a run must agree on."""

import gzip
import os

from portal import pytest_harness


def test_gzip_parameters_get_the_same_test_id_whatever_second_they_were_made():
    made = [gzip.compress(b"x,y\n", mtime=stamp) for stamp in (1_700_000_000, 1_700_000_001)]
    assert made[0] != made[1]
    ids = {pytest_harness.pytest_make_parametrize_id(None, value, "head") for value in made}
    assert len(ids) == 1
    assert pytest_harness.pytest_make_parametrize_id(None, b"x,y\n", "head") is None


def test_pytest_always_runs_on_the_test_settings():
    # Importing the harness imports portal, whose Celery app sets a default DJANGO_SETTINGS_MODULE
    # (local): with it, xdist workers shared Django's default test database name and dropped it
    # under each other.
    from django.conf import settings

    assert settings.SETTINGS_MODULE == "portal.settings.test"
    assert os.environ["DJANGO_SETTINGS_MODULE"] == "portal.settings.test"
