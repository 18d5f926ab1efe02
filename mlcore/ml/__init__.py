"""The machine-learning core: Django-free, used by training jobs, prediction jobs and the API.

Job code calls only what is exported here. Every exception derived from MLError carries a
plain-language message that may be shown to the user as is.
"""

from .artifacts import dump_pipeline, load_pipeline, sha256_hex, verify_sha256
from .data import iter_frames, iter_tables, read_columns, read_frame
from .errors import (
    ArtifactIntegrityError,
    BadValuesError,
    DataError,
    JobCancelled,
    MissingColumnsError,
    MLError,
    PredictionCancelled,
    SpecError,
    TrainingCancelled,
    TrainingError,
    UntrustedArtifactError,
)
from .explain import ExplanationUnavailable
from .online import OnlinePredictor
from .onnx import OnnxModel, compile_onnx, load_onnx
from .pipeline import build_pipeline
from .predict import batch_predict, check_columns, coerce_chunk, predict_chunk
from .ranges import out_of_range, significant, training_ranges
from .spec import ALGORITHMS, TrainSpec, algorithm_catalogue, infer_task, validate_spec
from .training import TrainResult, train, train_from_file

__all__ = [
    "ALGORITHMS", "ArtifactIntegrityError", "BadValuesError", "DataError", "ExplanationUnavailable", "JobCancelled",
    "MLError", "MissingColumnsError", "OnlinePredictor", "OnnxModel", "PredictionCancelled",
    "SpecError", "TrainResult", "TrainSpec", "TrainingCancelled", "TrainingError",
    "UntrustedArtifactError", "algorithm_catalogue", "batch_predict", "build_pipeline",
    "check_columns", "coerce_chunk", "compile_onnx", "dump_pipeline", "infer_task",
    "iter_frames", "iter_tables", "load_onnx", "load_pipeline", "predict_chunk", "read_columns",
    "out_of_range", "read_frame", "sha256_hex", "significant", "train", "train_from_file",
    "training_ranges", "validate_spec", "verify_sha256",
]
