"""Development and `make run`: console e-mail; the product's own error pages, as everywhere."""

from .base import *  # noqa: F403
from .env import env_bool

# Off by default even here: Django's debug pages (tracebacks, settings, URL lists) must never
# reach a browser, and static files are served by WhiteNoise's finders either way.
# DJANGO_DEBUG=1 brings them back for a developer who wants them.
DEBUG = env_bool("DJANGO_DEBUG", False)
