"""What can be trained, and the check of a training request against the dataset's profile.

The form, the REST API and the job all validate against `ALGORITHMS`, so a setting accepted by
one is accepted by all. `validate_spec` refuses (HTTP 422) what the profile already shows cannot
work; what only shows while running is left to `training.train`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import SpecError

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)

MIN_ROWS = 10
MIN_ROWS_PER_CLASS = 2
MAX_CLASSES = 100
# A number target with at most this many different values is taken as classes (ratings, codes).
MAX_DISTINCT_FOR_CLASSES = 10


@dataclass(frozen=True)
class Param:
    """One hyperparameter as the form shows it: `type` is int, float, bool or choice."""

    label: str
    type: str
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    nullable: bool = False


@dataclass(frozen=True)
class Algorithm:
    label: str
    tasks: tuple[str, ...]
    params: dict[str, Param]
    help: str


_TREES = Param("Number of trees", "int", 100, "More trees give steadier results but train slower.",
               min=1, max=1000)
_DEPTH = Param("Maximum depth", "int", None, "Limits how detailed each tree may get; empty means "
               "no limit.", min=1, max=100, nullable=True)

ALGORITHMS: dict[str, Algorithm] = {
    "logistic_regression": Algorithm(
        "Logistic regression", (CLASSIFICATION,),
        {
            "C": Param("Regularisation (C)", "float", 1.0, "Smaller values give a simpler, more "
                       "cautious model.", min=0.0001, max=10000),
            "max_iter": Param("Maximum iterations", "int", 1000, "How long the solver may search "
                              "before giving up.", min=10, max=100000),
            "class_weight": Param("Class weights", "choice", "none", "'balanced' gives rare "
                                  "classes as much weight as common ones.",
                                  choices=("none", "balanced")),
        },
        "A fast, explainable baseline for classes."),
    "linear_regression": Algorithm(
        "Linear regression", (REGRESSION,),
        {"fit_intercept": Param("Fit intercept", "bool", True, "Leave on unless the target is "
                                "zero when every feature is zero.")},
        "A straight-line fit: fast and explainable."),
    "ridge": Algorithm(
        "Ridge regression", (REGRESSION,),
        {"alpha": Param("Regularisation (alpha)", "float", 1.0, "Larger values give a simpler, "
                        "more cautious model.", min=0, max=1000000)},
        "Linear regression that copes better with many or related features."),
    "random_forest": Algorithm(
        "Random forest", (CLASSIFICATION, REGRESSION),
        {
            "n_estimators": _TREES,
            "max_depth": _DEPTH,
            "min_samples_leaf": Param("Minimum rows per leaf", "int", 1, "Larger values smooth "
                                      "the model and reduce over-fitting.", min=1, max=1000),
        },
        "Many decision trees voting together; robust with little tuning."),
    "hist_gradient_boosting": Algorithm(
        "Histogram gradient boosting", (CLASSIFICATION, REGRESSION),
        {
            "max_iter": Param("Boosting rounds", "int", 100, "More rounds fit the data more "
                              "closely.", min=1, max=2000),
            "learning_rate": Param("Learning rate", "float", 0.1, "Smaller steps need more rounds "
                                   "but often generalise better.", min=0.001, max=1),
            "max_depth": _DEPTH,
            "max_leaf_nodes": Param("Maximum leaves per tree", "int", 31, "Larger trees capture "
                                    "more detail.", min=2, max=1024),
            "l2_regularization": Param("L2 regularisation", "float", 0.0, "Larger values give a "
                                       "more cautious model.", min=0, max=1000),
        },
        "Usually the most accurate choice on tables with many rows."),
}


@dataclass
class TrainSpec:
    """A validated training request; `to_dict()` / `from_dict()` store it in the job row."""

    target: str
    features: list[str]
    task: str
    algorithm: str
    params: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=lambda: {"method": "holdout",
                                                                "test_size": 0.2})
    random_state: int = 42
    max_categories: int = 50
    cardinality_fail: int = 1000
    # Cores training may use (forest workers, OpenMP, BLAS); set by the job runner from the
    # plan, never by the user.
    n_jobs: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainSpec:
        return cls(**data)


def algorithm_catalogue() -> dict[str, dict]:
    """JSON-friendly copy of `ALGORITHMS` for forms and API documentation."""
    return {name: {"label": algo.label, "tasks": list(algo.tasks), "help": algo.help,
                   "params": {key: asdict(p) for key, p in algo.params.items()}}
            for name, algo in ALGORITHMS.items()}


def _fmt(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def _coerce_param(name: str, param: Param, value: Any) -> Any:
    """Accept form strings as well as JSON values; refuse anything out of range."""
    where = f"params.{name}"
    if value is None or value == "":
        if param.nullable:
            return None
        raise SpecError(f"{param.label} needs a value.", where)
    if param.type == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise SpecError(f"{param.label} must be yes or no.", where)
    if param.type == "choice":
        if str(value) not in param.choices:
            options = ", ".join(f"'{c}'" for c in param.choices)
            raise SpecError(f"{param.label} must be one of {options}.", where)
        return str(value)
    return _coerce_number(name, param, value)


def _coerce_number(name: str, param: Param, value: Any) -> int | float:
    where = f"params.{name}"
    kind = "a whole number" if param.type == "int" else "a number"
    if isinstance(value, bool):
        raise SpecError(f"{param.label} must be {kind}.", where)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"{param.label} must be {kind}.", where)
    if not math.isfinite(number) or (param.type == "int" and not number.is_integer()):
        raise SpecError(f"{param.label} must be {kind}.", where)
    if (param.min is not None and number < param.min) or (
            param.max is not None and number > param.max):
        raise SpecError(f"{param.label} must be between {_fmt(param.min)} and "
                        f"{_fmt(param.max)} (got {_fmt(number)}).", where)
    return int(number) if param.type == "int" else number


def validate_params(algorithm: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """Every setting of the algorithm, defaults filled in; unknown names are refused."""
    algo = ALGORITHMS[algorithm]
    if params is not None and not isinstance(params, dict):
        raise SpecError("Settings must be given as names and values.", "params")
    params = dict(params or {})
    unknown = sorted(set(params) - set(algo.params))
    if unknown:
        known = ", ".join(algo.params)
        raise SpecError(f"{algo.label} has no setting called '{unknown[0]}'. Its settings are: "
                        f"{known}.", f"params.{unknown[0]}")
    return {name: _coerce_param(name, p, params[name]) if name in params else p.default
            for name, p in algo.params.items()}


def _validate_algorithm(name: Any) -> str:
    if name not in ALGORITHMS:
        options = ", ".join(ALGORITHMS)
        raise SpecError(f"Unknown algorithm '{name}'. Choose one of: {options}.", "algorithm")
    return name


def _validate_evaluation(evaluation: dict | None) -> dict[str, Any]:
    if evaluation is not None and not isinstance(evaluation, dict):
        raise SpecError("Evaluation must name a method: 'holdout' or 'kfold'.", "evaluation")
    evaluation = dict(evaluation or {"method": "holdout"})
    method = evaluation.get("method", "holdout")
    if method == "holdout":
        size = evaluation.get("test_size", 0.2)
        if isinstance(size, bool) or not isinstance(size, int | float) or not 0.05 <= size <= 0.5:
            raise SpecError("The test share must be a fraction between 0.05 and 0.5.",
                            "evaluation.test_size")
        return {"method": "holdout", "test_size": float(size)}
    if method == "kfold":
        folds = evaluation.get("folds", 5)
        if isinstance(folds, bool) or not isinstance(folds, int) or not 2 <= folds <= 10:
            raise SpecError("The number of folds must be a whole number between 2 and 10.",
                            "evaluation.folds")
        return {"method": "kfold", "folds": folds}
    raise SpecError("Evaluation must be a hold-out split ('holdout') or k-fold "
                    "cross-validation ('kfold').", "evaluation.method")


def infer_task(column: dict) -> str:
    """Numbers with many different values are amounts (regression); anything else is classes."""
    if column.get("type") == "number":
        distinct = column.get("distinct")
        if distinct is None or distinct > MAX_DISTINCT_FOR_CLASSES:
            return REGRESSION
    return CLASSIFICATION


def looks_like_identifier(column: dict, rows: int) -> bool:
    """A text column with a different value on (nearly) every row: a customer number or a name.

    It cannot generalise (and past `cardinality_fail` values it stops a training job), so the
    train page leaves it unticked by default; it can still be chosen.
    """
    present = rows - (column.get("missing") or 0)
    distinct = column.get("distinct")
    return (column.get("type") in ("text", "category") and distinct is not None and present >= 20
            and distinct >= 0.95 * present)


def _validate_features(features: Any, target: str, by_name: dict[str, dict]) -> list[str]:
    if features is None or features == []:
        chosen = [name for name in by_name if name != target]
    else:
        if isinstance(features, str) or not isinstance(features, list | tuple):
            raise SpecError("Features must be a list of column names.", "features")
        chosen = list(dict.fromkeys(features))
        for name in chosen:
            if name not in by_name:
                raise SpecError(f"There is no column named '{name}' in this dataset.",
                                "features")
        if target in chosen:
            raise SpecError(f"The target '{target}' cannot also be one of the features.",
                            "features")
    if not chosen:
        raise SpecError("Choose at least one feature column besides the target.", "features")
    return chosen


def _check_target_values(column: dict, task: str, rows: int, evaluation: dict) -> None:
    """The 422 cases visible in the profile: all missing, one class, too few rows."""
    name, missing = column["name"], int(column.get("missing") or 0)
    present = rows - missing
    if present <= 0:
        raise SpecError(f"The target '{name}' has no values: every row is empty.", "target")
    if present < MIN_ROWS:
        raise SpecError(f"Too few rows: only {present} row(s) have a value in '{name}'; at "
                        f"least {MIN_ROWS} are needed.", "target")
    if task != CLASSIFICATION:
        return
    distinct = column.get("distinct")
    if distinct == 1:
        raise SpecError(f"The target '{name}' has only one value, so there is nothing to tell "
                        "apart. Choose a column with at least two different values.", "target")
    if distinct is not None and distinct > MAX_CLASSES:
        raise SpecError(f"The target '{name}' has {distinct:,} different values, too many to "
                        f"predict as classes (at most {MAX_CLASSES}). To predict an amount, "
                        "choose regression.", "target")
    # The dataset profile lists top values as {"value", "count"}; older callers pass pairs.
    top = [(t["value"], t["count"]) if isinstance(t, dict) else tuple(t) for t in column.get("top") or []]
    if distinct is None or len(top) < distinct or column.get("top_is_estimate"):
        return  # The profile does not list every class exactly: the run-time check decides.
    value, count = min(top, key=lambda pair: pair[1])
    if count < MIN_ROWS_PER_CLASS:
        raise SpecError(f"Too few rows: the class '{value}' of '{name}' has only {count} row; "
                        f"each class needs at least {MIN_ROWS_PER_CLASS}.", "target")
    folds = evaluation.get("folds", 0)
    if count < folds:
        raise SpecError(f"The class '{value}' of '{name}' has only {count} rows, fewer than the "
                        f"{folds} folds. Choose fewer folds or a hold-out split.",
                        "evaluation.folds")


def _validate_task(task: Any, column: dict, algorithm: str) -> str:
    name, col_type = column["name"], column.get("type")
    if col_type == "datetime":
        raise SpecError(f"The target '{name}' holds dates, which cannot be predicted. Choose "
                        "another target.", "target")
    if task in (None, ""):
        task = infer_task(column)
    elif task not in TASKS:
        raise SpecError("The task must be 'classification' or 'regression'.", "task")
    if task == REGRESSION and col_type in ("text", "category", "boolean"):
        kind = "yes/no values" if col_type == "boolean" else "words, not numbers"
        raise SpecError(f"The target '{name}' holds {kind}, so it cannot be predicted as an "
                        "amount (regression). Choose classification or a numeric target.", "task")
    algo = ALGORITHMS[algorithm]
    if task not in algo.tasks:
        fitting = ", ".join(a.label.lower() for a in ALGORITHMS.values() if task in a.tasks)
        raise SpecError(f"{algo.label} cannot be used for {task}. For {task} choose: "
                        f"{fitting}.", "algorithm")
    return task


def validate_spec(spec: dict[str, Any], profile_columns: list[dict], rows: int) -> TrainSpec:
    """Check a training request against the dataset profile; raise SpecError with a reason."""
    algorithm = _validate_algorithm(spec.get("algorithm"))
    params = validate_params(algorithm, spec.get("params"))
    evaluation = _validate_evaluation(spec.get("evaluation"))
    by_name = {column["name"]: column for column in profile_columns}
    target = spec.get("target")
    if not isinstance(target, str) or target not in by_name:
        raise SpecError(f"There is no column named '{target}' in this dataset.", "target")
    features = _validate_features(spec.get("features"), target, by_name)
    task = _validate_task(spec.get("task"), by_name[target], algorithm)
    _check_target_values(by_name[target], task, rows, evaluation)
    return TrainSpec(target=target, features=features, task=task, algorithm=algorithm,
                     params=params, evaluation=evaluation,
                     random_state=_bounded_int(spec, "random_state", 42, 0, 2**31 - 1),
                     max_categories=_bounded_int(spec, "max_categories", 50, 2, 1000),
                     cardinality_fail=_bounded_int(spec, "cardinality_fail", 1000, 10, 1_000_000))


def _bounded_int(spec: dict, key: str, default: int, low: int, high: int) -> int:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SpecError(f"'{key}' must be a whole number between {low:,} and {high:,}.", key)
    return value
