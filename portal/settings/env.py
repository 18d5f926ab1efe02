"""One place that reads the environment; a bad value fails loudly at start-up."""

import base64
import binascii
import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def parse_keys(raw: str, *, source: str, size: int = 32) -> list[str]:
    """Comma-separated base64 keys of exactly `size` bytes each, in the given order.

    Returns the canonical base64 strings; any bad entry fails loudly, naming its position (never
    the value: it is a secret).
    """
    keys = []
    for position, item in enumerate((part.strip() for part in raw.split(",")), start=1):
        if not item:
            continue
        try:
            key = base64.b64decode(item, validate=True)
        except (binascii.Error, ValueError):
            raise ImproperlyConfigured(f"{source}: key #{position} is not valid base64.")
        if len(key) != size:
            raise ImproperlyConfigured(
                f"{source}: key #{position} decodes to {len(key)} bytes; each key must be exactly "
                f"{size} random bytes, base64-encoded."
            )
        keys.append(base64.b64encode(key).decode())
    return keys


def env_required(name: str, hint: str) -> str:
    """A variable production cannot do without: unset or empty fails, naming it."""
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(f"{name} must be set in production ({hint})")
    return value
