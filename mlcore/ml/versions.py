"""Library versions recorded with every model: a model is only reproducible with them."""

from __future__ import annotations

import platform
from importlib import metadata

PACKAGES = ("scikit-learn", "numpy", "pandas", "skops", "pyarrow", "skl2onnx", "onnxruntime")


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions
