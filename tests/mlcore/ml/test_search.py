"""Successive halving's bookkeeping (mlcore/ml/search.py), free of the database."""

from __future__ import annotations

from mlcore.ml import search


def trial(rung: int, candidate: int, score: float | None, status: str = "succeeded") -> dict:
    return {"number": 0, "rung": rung, "candidate": candidate, "score": score, "status": status}


def test_candidates_put_every_algorithms_defaults_first():
    found = search.candidates("classification", ["random_forest", "logistic_regression"])
    assert [c["algorithm"] for c in found[:2]] == ["random_forest", "logistic_regression"]
    assert found[1]["params"] == {"C": 1.0, "max_iter": 1000, "class_weight": "none"}
    assert len(found) == 2 + 2 + 3
    assert search.candidates("regression", ["logistic_regression"]) == []


def test_each_rung_keeps_the_better_half_of_the_one_before():
    trials = [trial(0, 0, 0.7), trial(0, 1, 0.9), trial(0, 2, 0.8), trial(0, 3, None, "failed")]
    assert search.next_trial(4, trials, "roc_auc") == (1, 1)
    assert search.rung_members(4, trials, 1, "roc_auc") == [1, 2]
    # For an error metric, lower is better.
    assert search.rung_members(4, trials, 1, "rmse") == [0, 2]


def test_the_search_ends_when_one_survivor_is_left_and_the_best_is_on_the_highest_rung():
    trials = [trial(0, 0, 0.7), trial(0, 1, 0.9), trial(0, 2, 0.8), trial(1, 1, 0.85), trial(1, 2, 0.86)]
    assert search.next_trial(3, trials, "roc_auc") is None  # rung 2 would hold candidate 2 alone
    assert search.best(trials, "roc_auc")["candidate"] == 2  # not rung 0's 0.9
    assert search.planned_trials(3) == 5 and search.planned_trials(10) == 10 + 5 + 3
    assert search.best([trial(0, 0, None, "failed")], "roc_auc") is None
