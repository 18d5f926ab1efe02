"""portal/pytest_harness.py: what every pytest process of a run must agree on."""

import os


def test_pytest_always_runs_on_the_test_settings():
    # Importing the harness imports portal, whose Celery app sets a default DJANGO_SETTINGS_MODULE
    # (local): with it, xdist workers shared Django's default test database name and dropped it
    # under each other.
    from django.conf import settings

    assert settings.SETTINGS_MODULE == "portal.settings.test"
    assert os.environ["DJANGO_SETTINGS_MODULE"] == "portal.settings.test"
