"""Conditional requests on the API's single objects (RFC 9110 section 13).

Every JSON answer of an object endpoint (``ObjectAPI``) to GET or PATCH carries a strong ``ETag``:
a digest of the object as the caller sees it (the body of its GET). ``If-None-Match`` on a GET
gets 304 without a body when it names the current tag. ``If-Match`` on a PATCH or DELETE lets the
write happen only while the object is still what the caller read: the check and the write hold an
advisory lock on the object, so of two editors who read the same version, exactly one writes and
the other gets 412 (a process that dies lets go of the lock with its connection).
"""

from __future__ import annotations

import hashlib
import json

from rest_framework.utils.encoders import JSONEncoder

# How long a conditional write waits for another on the same object before it is answered 409.
LOCK_WAIT_SECONDS = 10.0


def etag_of(data) -> str:
    body = json.dumps(data, cls=JSONEncoder, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'


def _tags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def none_match(header: str, etag: str) -> bool:
    """If-None-Match names the current tag (weak comparison: W/ prefixes ignored)."""
    tags = _tags(header)
    bare = etag.removeprefix("W/")
    return "*" in tags or any(tag.removeprefix("W/") == bare for tag in tags)


def match(header: str, etag: str | None) -> bool:
    """If-Match names the current tag (strong comparison; ``*`` when the object exists)."""
    tags = _tags(header)
    if "*" in tags:
        return True
    return etag is not None and etag in tags and not etag.startswith("W/")
