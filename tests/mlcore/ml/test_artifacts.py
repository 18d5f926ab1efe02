"""Saved models: skops bytes, hash checked before loading, unexpected types refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import SVC

from mlcore.ml.artifacts import ALLOWED_TYPES, dump_pipeline, load_pipeline, sha256_hex
from mlcore.ml.errors import ArtifactIntegrityError, UntrustedArtifactError
from mlcore.ml.pipeline import build_pipeline
from mlcore.ml.spec import ALGORITHMS, TrainSpec, validate_params


class Sneaky:
    """A class no pipeline of ours contains."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X


def fitted(frame, types, algorithm, task, target):
    spec = TrainSpec(target=target, features=list(types), task=task, algorithm=algorithm,
                     params=validate_params(algorithm, {}), max_categories=5)
    return build_pipeline(spec, types).fit(frame[list(types)], frame[target])


@pytest.mark.parametrize(("algorithm", "task"), [(name, task) for name, algo in
                                                 ALGORITHMS.items() for task in algo.tasks])
def test_every_pipeline_we_build_round_trips_through_the_allowlist(mixed, algorithm, task):
    frame, types = mixed
    model = fitted(frame, types, algorithm, task, "churn" if task == "classification" else "spend")
    data = dump_pipeline(model)
    assert set(sio.get_untrusted_types(data=data)) <= ALLOWED_TYPES
    loaded = load_pipeline(data, sha256_hex(data))
    np.testing.assert_array_equal(loaded.predict(frame[list(types)]),
                                  model.predict(frame[list(types)]))


def test_a_changed_byte_is_refused_before_loading(mixed):
    frame, types = mixed
    data = dump_pipeline(fitted(frame, {"age": "number"}, "ridge", "regression", "spend"))
    with pytest.raises(ArtifactIntegrityError, match="does not match its recorded fingerprint"):
        load_pipeline(data, sha256_hex(data + b"x"))


def test_an_artifact_calling_eval_is_refused_unloaded():
    crafted = sio.dumps(Pipeline([("step", FunctionTransformer(func=eval))]))
    with pytest.raises(UntrustedArtifactError) as caught:
        load_pipeline(crafted, sha256_hex(crafted))
    assert caught.value.types == ["builtins.eval"]


def test_an_artifact_with_a_foreign_class_is_refused():
    crafted = sio.dumps(Pipeline([("step", Sneaky())]))
    with pytest.raises(UntrustedArtifactError, match="Sneaky"):
        load_pipeline(crafted, sha256_hex(crafted))


def test_a_model_that_is_not_a_pipeline_is_refused():
    bare = sio.dumps(SVC().fit(pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]}), [0, 1, 0, 1]))
    with pytest.raises(UntrustedArtifactError, match="SVC"):
        load_pipeline(bare, sha256_hex(bare))


def test_garbage_bytes_are_refused_plainly():
    garbage = b"not a zip archive"
    with pytest.raises(UntrustedArtifactError, match="unreadable model file"):
        load_pipeline(garbage, sha256_hex(garbage))
