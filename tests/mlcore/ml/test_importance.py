"""Shuffling prepared blocks is the same as shuffling the original column and preparing again."""

from __future__ import annotations

import numpy as np
import pytest

from mlcore.ml.importance import column_blocks, permutation_importance_by_column
from mlcore.ml.pipeline import build_pipeline
from mlcore.ml.spec import TrainSpec, validate_params


@pytest.fixture(scope="module")
def fitted(mixed):
    frame, types = mixed
    spec = TrainSpec(target="churn", features=list(types), task="classification",
                     algorithm="random_forest",
                     params=validate_params("random_forest", {"n_estimators": 10}),
                     max_categories=4)
    return build_pipeline(spec, types).fit(frame[list(types)], frame["churn"])


def dense(matrix):
    return matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)


def test_blocks_cover_every_prepared_column_once(mixed, fitted):
    frame, types = mixed
    prepare = fitted.steps[0][1]
    blocks = column_blocks(prepare)
    width = dense(prepare.transform(frame[list(types)].head(3))).shape[1]
    assert sorted(blocks) == sorted(types)
    assert sorted(np.concatenate(list(blocks.values())).tolist()) == list(range(width))
    assert len(blocks["signup"]) == 5 and len(blocks["age"]) == 1


@pytest.mark.parametrize("column", ["age", "income", "city", "member", "note", "signup"])
def test_shuffling_a_block_equals_preparing_a_shuffled_column(mixed, fitted, column):
    frame, types = mixed
    X = frame[list(types)].head(200).reset_index(drop=True)
    prepare = fitted.steps[0][1]
    order = np.random.default_rng(1).permutation(len(X))
    shuffled_raw = X.copy()
    shuffled_raw[column] = X[column].to_numpy()[order]
    prepared = dense(prepare.transform(X))
    block = column_blocks(prepare)[column]
    by_block = prepared.copy()
    by_block[:, block] = prepared[order][:, block]
    np.testing.assert_array_equal(by_block, dense(prepare.transform(shuffled_raw)))


def test_the_columns_that_drive_the_target_rank_first(mixed, fitted):
    frame, types = mixed
    rows = permutation_importance_by_column(fitted, frame[list(types)], frame["churn"].to_numpy(),
                                            classify=True, repeats=2, seed=0)
    assert rows[0]["feature"] in {"age", "city", "member"}
    assert [row["feature"] for row in rows][-1] not in {"age", "city", "member"}
