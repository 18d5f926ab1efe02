"""Saving and loading models with skops: never pickle, hash checked first, types allowlisted.

Loading a pickle runs whatever code it names. skops stores a description instead and only
builds types it trusts; we trust scikit-learn's stock estimators (skops' defaults) plus exactly
the few extra types our pipelines contain, listed below. Anything else — a function such as
`builtins.eval`, a foreign class — makes the load fail before a single object is built.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

import skops.io as sio
from sklearn.pipeline import Pipeline

from .errors import ArtifactIntegrityError, UntrustedArtifactError

logger = logging.getLogger(__name__)

# Found by dumping a pipeline of every algorithm, task and column type (see the tests).
ALLOWED_TYPES = frozenset({
    "mlcore.ml.features.datetime_part_names",
    "mlcore.ml.features.datetime_parts",
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
})


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_sha256(data: bytes, expected_sha256: str) -> None:
    """Refuse bytes changed since they were saved (storage corruption or tampering)."""
    if not hmac.compare_digest(sha256_hex(data), (expected_sha256 or "").lower()):
        raise ArtifactIntegrityError("The stored model file does not match its recorded "
                                     "fingerprint, so it was not loaded.")


def dump_pipeline(pipeline: Pipeline) -> bytes:
    """skops bytes of a fitted pipeline; store `sha256_hex()` of them next to the file."""
    return sio.dumps(pipeline)


def load_pipeline(data: bytes, expected_sha256: str) -> Pipeline:
    """Hash first, then the type check, then build the objects."""
    verify_sha256(data, expected_sha256)
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:  # skops raises many kinds on a malformed archive
        logger.warning("artifact unreadable", extra={"reason": str(exc)[:300]})
        raise UntrustedArtifactError(["unreadable model file"])
    refused = sorted(set(untrusted) - ALLOWED_TYPES)
    if refused:
        logger.warning("artifact refused", extra={"types": refused})
        raise UntrustedArtifactError(refused)
    pipeline = sio.loads(data, trusted=sorted(untrusted))
    if not isinstance(pipeline, Pipeline):
        raise UntrustedArtifactError([type(pipeline).__qualname__])
    return pipeline
