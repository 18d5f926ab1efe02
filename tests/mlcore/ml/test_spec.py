"""validate_spec: every refusal visible in the profile is a SpecError with a plain reason."""

from __future__ import annotations

import pytest

from mlcore.ml.errors import SpecError
from mlcore.ml.spec import ALGORITHMS, TrainSpec, algorithm_catalogue, infer_task, validate_spec

ROWS = 100


def column(name, col_type="number", missing=0, distinct=80, top=None):
    return {"name": name, "type": col_type, "missing": missing, "distinct": distinct,
            "top": top or []}


PROFILE = [
    column("age"),
    column("city", "category", distinct=5),
    column("price", distinct=500),
    column("churn", "category", distinct=2, top=[["no", 70], ["yes", 30]]),
    column("comment", "text", distinct=95),
    column("signup", "datetime"),
    column("rating", "number", distinct=5, top=[["1", 20], ["2", 20], ["3", 20], ["4", 20],
                                                ["5", 20]]),
    column("member", "boolean", distinct=2, top=[["true", 50], ["false", 50]]),
]


def refusal(spec: dict, profile=PROFILE, rows=ROWS) -> SpecError:
    with pytest.raises(SpecError) as caught:
        validate_spec(spec, profile, rows)
    return caught.value


def test_it_refuses_an_unknown_algorithm():
    error = refusal({"target": "churn", "algorithm": "deep_magic"})
    assert error.field == "algorithm"
    assert "Unknown algorithm 'deep_magic'" in error.message


def test_it_refuses_an_unknown_setting_and_names_the_known_ones():
    error = refusal({"target": "churn", "algorithm": "random_forest",
                     "params": {"n_trees": 10}})
    assert error.field == "params.n_trees"
    assert error.message == ("Random forest has no setting called 'n_trees'. Its settings are: "
                             "n_estimators, max_depth, min_samples_leaf.")


def test_it_refuses_a_value_out_of_range():
    error = refusal({"target": "churn", "algorithm": "random_forest",
                     "params": {"n_estimators": 5000}})
    assert error.field == "params.n_estimators"
    assert error.message == "Number of trees must be between 1 and 1,000 (got 5,000)."


def test_it_refuses_a_fraction_where_a_whole_number_is_needed():
    error = refusal({"target": "churn", "algorithm": "random_forest",
                     "params": {"n_estimators": 10.5}})
    assert error.message == "Number of trees must be a whole number."


def test_it_accepts_form_strings_and_fills_in_defaults():
    spec = validate_spec({"target": "churn", "algorithm": "random_forest",
                          "params": {"n_estimators": "50", "max_depth": ""}}, PROFILE, ROWS)
    assert spec.params == {"n_estimators": 50, "max_depth": None, "min_samples_leaf": 1}


def test_it_refuses_an_unknown_target_in_plain_words():
    error = refusal({"target": "x", "algorithm": "random_forest"})
    assert error.field == "target"
    assert error.message == "There is no column named 'x' in this dataset."


def test_it_refuses_an_unknown_feature():
    error = refusal({"target": "churn", "algorithm": "random_forest", "features": ["age", "zip"]})
    assert error.field == "features"
    assert error.message == "There is no column named 'zip' in this dataset."


def test_it_refuses_the_target_among_the_features():
    error = refusal({"target": "churn", "algorithm": "random_forest",
                     "features": ["age", "churn"]})
    assert error.message == "The target 'churn' cannot also be one of the features."


def test_it_refuses_a_target_that_is_all_missing():
    profile = [column("age"), column("empty", "number", missing=ROWS, distinct=0)]
    error = refusal({"target": "empty", "algorithm": "random_forest"}, profile)
    assert error.message == "The target 'empty' has no values: every row is empty."


def test_it_refuses_a_target_with_one_class():
    profile = [column("age"), column("country", "category", distinct=1, top=[["FR", 100]])]
    error = refusal({"target": "country", "algorithm": "random_forest"}, profile)
    assert error.field == "target"
    assert "has only one value" in error.message


def test_it_refuses_fewer_than_ten_rows():
    profile = [column("age", distinct=9), column("churn", "category", distinct=2,
                                                 top=[["no", 5], ["yes", 4]])]
    error = refusal({"target": "churn", "algorithm": "random_forest"}, profile, rows=9)
    assert error.message == ("Too few rows: only 9 row(s) have a value in 'churn'; at least 10 "
                             "are needed.")


def test_it_counts_only_rows_with_a_target_value():
    profile = [column("age"), column("churn", "category", missing=95, distinct=2,
                                     top=[["no", 3], ["yes", 2]])]
    error = refusal({"target": "churn", "algorithm": "random_forest"}, profile)
    assert "only 5 row(s) have a value in 'churn'" in error.message


def test_it_refuses_a_class_with_a_single_row_when_the_profile_lists_every_class():
    profile = [column("age"), column("churn", "category", distinct=3,
                                     top=[["no", 80], ["yes", 19], ["maybe", 1]])]
    error = refusal({"target": "churn", "algorithm": "random_forest"}, profile)
    assert error.message == ("Too few rows: the class 'maybe' of 'churn' has only 1 row; each "
                             "class needs at least 2.")


def test_it_leaves_class_counts_to_run_time_when_the_profile_lists_only_the_top_values():
    profile = [column("age"), column("code", "category", distinct=40,
                                     top=[[f"c{i}", 5] for i in range(10)])]
    spec = validate_spec({"target": "code", "algorithm": "random_forest"}, profile, ROWS)
    assert spec.task == "classification"


def test_it_leaves_class_counts_to_run_time_when_the_profile_counts_are_estimates():
    rare = column("churn", "category", distinct=3, top=[["no", 80], ["yes", 19], ["maybe", 1]])
    profile = [column("age"), {**rare, "top_is_estimate": True}]
    spec = validate_spec({"target": "churn", "algorithm": "random_forest"}, profile, ROWS)
    assert spec.target == "churn"


def test_it_refuses_a_text_target_for_regression():
    error = refusal({"target": "comment", "task": "regression", "algorithm": "random_forest"})
    assert error.field == "task"
    assert "cannot be predicted as an amount (regression)" in error.message


def test_it_refuses_a_date_target():
    error = refusal({"target": "signup", "algorithm": "random_forest"})
    assert "holds dates" in error.message


def test_it_refuses_linear_regression_for_classification():
    error = refusal({"target": "churn", "algorithm": "linear_regression"})
    assert error.field == "algorithm"
    assert error.message == ("Linear regression cannot be used for classification. For "
                             "classification choose: logistic regression, random forest, "
                             "histogram gradient boosting.")


def test_it_refuses_logistic_regression_for_an_amount():
    error = refusal({"target": "price", "algorithm": "logistic_regression"})
    assert "Logistic regression cannot be used for regression" in error.message


def test_it_refuses_more_folds_than_rows_of_the_rarest_class():
    profile = [column("age"), column("churn", "category", distinct=2,
                                     top=[["no", 97], ["yes", 3]])]
    error = refusal({"target": "churn", "algorithm": "random_forest",
                     "evaluation": {"method": "kfold", "folds": 5}}, profile)
    assert error.field == "evaluation.folds"


def test_it_refuses_an_unknown_evaluation():
    error = refusal({"target": "churn", "algorithm": "random_forest",
                     "evaluation": {"method": "bootstrap"}})
    assert error.field == "evaluation.method"


def test_it_refuses_a_number_target_with_too_many_values_for_classes():
    error = refusal({"target": "price", "task": "classification", "algorithm": "random_forest"})
    assert "too many to predict as classes" in error.message


@pytest.mark.parametrize(("target", "task"), [
    ("price", "regression"),
    ("rating", "classification"),
    ("churn", "classification"),
    ("member", "classification"),
])
def test_it_infers_the_task_from_the_target_profile(target, task):
    spec = validate_spec({"target": target, "algorithm": "random_forest"}, PROFILE, ROWS)
    assert spec.task == task


def test_an_explicit_task_overrides_the_inferred_one():
    spec = validate_spec({"target": "rating", "task": "regression",
                          "algorithm": "hist_gradient_boosting"}, PROFILE, ROWS)
    assert spec.task == "regression"


def test_features_default_to_every_other_column():
    spec = validate_spec({"target": "churn", "algorithm": "random_forest"}, PROFILE, ROWS)
    assert spec.features == ["age", "city", "price", "comment", "signup", "rating", "member"]
    assert spec.evaluation == {"method": "holdout", "test_size": 0.2}
    assert (spec.random_state, spec.max_categories, spec.cardinality_fail) == (42, 50, 1000)


def test_a_spec_survives_a_round_trip_through_json_types():
    spec = validate_spec({"target": "churn", "algorithm": "hist_gradient_boosting",
                          "evaluation": {"method": "kfold", "folds": 3}}, PROFILE, ROWS)
    assert TrainSpec.from_dict(spec.to_dict()) == spec


def test_infer_task_treats_a_number_without_distinct_count_as_an_amount():
    assert infer_task({"name": "x", "type": "number"}) == "regression"


def test_the_catalogue_lists_every_algorithm_with_its_settings():
    catalogue = algorithm_catalogue()
    assert set(catalogue) == set(ALGORITHMS) == {"logistic_regression", "linear_regression",
                                                  "ridge", "random_forest",
                                                  "hist_gradient_boosting"}
    assert catalogue["random_forest"]["params"]["n_estimators"]["max"] == 1000
