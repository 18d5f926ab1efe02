"""The training job: read the dataset, train and evaluate, store the encrypted artifact, register
the next version of the named model — atomically with the job's success."""

from __future__ import annotations

import logging
import uuid

from django.db import transaction

from . import storage
from .jobs.handlers import (
    JobCancelled,
    JobContext,
    JobFailed,
    job_handler,
    outputs_kept_only_if_registered,
)
from .models import Dataset, Job
from .services.datasets import dataset_profile
from .services.models import model_version_register
from .services.monitoring import monitoring_baseline_keep
from .storage import DATASETS, MODELS

logger = logging.getLogger(__name__)


def _store(tenant, data: bytes) -> tuple[str, storage.StoredObject]:
    object_id = str(uuid.uuid4())
    with storage.EncryptedWriter(tenant, MODELS, object_id) as writer:
        writer.write(data)
        return object_id, writer.commit()


@job_handler(Job.Kind.TRAINING)
def run_training(ctx: JobContext) -> None:
    from . import ml

    params = ctx.job.params
    dataset = Dataset.objects.filter(pk=params["dataset"]).first()
    if dataset is None:
        raise JobFailed(f"The dataset '{params.get('dataset_name', params['dataset'])}' was deleted "
                        f"before training started, so there is nothing to train on.")
    train_and_register(ctx, dataset, ml.TrainSpec.from_dict(params["spec"]))


def train_and_register(ctx: JobContext, dataset: Dataset, spec, *, start: float = 0.0,
                       result_extra: dict | None = None) -> None:
    """Train `spec` on the dataset (evaluation, final fit on every row), store the encrypted
    artifact and register the next version of the job's named model, with the job's success.
    The one path every model version takes (a training job, a model search's winner); `start`
    is where on the job's progress bar this begins."""
    from . import ml

    spec.n_jobs = 1  # one core per job: the scheduler shares the machine between jobs fairly
    span = 88 - start
    profile_columns = dataset_profile(tenant=ctx.tenant, dataset=dataset)["columns"]
    column_types = {c["name"]: c["type"] for c in profile_columns}
    # Every report of ml.train_from_file is a stage boundary (a handful per job), so each is
    # written at once: the job page must always name the stage running.
    try:
        with storage.open_object(ctx.tenant, DATASETS, str(dataset.object_id)) as stream:
            result = ml.train_from_file(stream, dataset.format, spec, column_types,
                                        progress=lambda f, m: ctx.progress(start + f * span, m, force=True),
                                        should_stop=ctx.should_stop, encoding=dataset.encoding)
    except ml.JobCancelled:
        raise JobCancelled()
    except ml.MLError as exc:
        raise JobFailed(str(exc))
    except storage.StorageError as exc:
        raise JobFailed(f"The dataset could not be read: {exc}")

    ctx.progress(90, "Saving the model", force=True)
    stored = [_store(ctx.tenant, ml.dump_pipeline(result.pipeline))]
    onnx = ml.compile_onnx(result.pipeline, result.sample_rows, result.column_types)
    if onnx is not None:
        stored.append(_store(ctx.tenant, onnx))
    with outputs_kept_only_if_registered(ctx.tenant, MODELS, [object_id for object_id, _ in stored]):
        ctx.progress(97, "Registering the new version", force=True)
        with transaction.atomic():
            version = model_version_register(
                tenant=ctx.tenant, job=ctx.job, user_id=ctx.job.created_by_id, dataset=dataset,
                fields=_version_fields(result, dataset, stored, profile_columns), stored_bytes=sum(s.plaintext_bytes for _, s in stored))
            # Monitoring's baseline, kept now: the dataset may be deleted before the version serves.
            monitoring_baseline_keep(version=version, profile_columns=profile_columns, rows=dataset.rows)
            ctx.succeed({**(result_extra or {}), "model": version.model_id, "model_version": version.id,
                         "version": version.version},
                        message=f"Trained {version.model.name} v{version.version}")


def _version_fields(result, dataset: Dataset, stored: list, profile_columns: list[dict]) -> dict:
    from . import ml

    report = result.report
    (artifact_id, artifact), *rest = stored
    onnx_id, onnx = rest[0] if rest else (None, None)
    evaluation = {**report["evaluation"], "metrics_std": report.get("metrics_std"),
                  "fold_metrics": report.get("fold_metrics"), "averaging": report.get("averaging"),
                  "n_rows_used": report.get("n_rows_used"),
                  "n_rows_dropped_missing_target": report.get("n_rows_dropped_missing_target"),
                  "random_state": report.get("random_state")}
    charts = {key: report[key] for key in ("roc_curve", "confusion_matrix", "predicted_vs_actual",
                                                    "precision_recall") if key in report}
    return dict(
        dataset_name=dataset.name, dataset_version=dataset.version, dataset_rows=dataset.rows, target=report["target"],
        features=report["features"], column_types=report["column_types"], task=report["task"],
        algorithm=report["algorithm"], params=report["params"], evaluation=evaluation,
        metrics=report["metrics"], charts=charts, feature_importance=report["feature_importance"],
        classes=report["classes"] or [], library_versions=report["versions"],
        train_seconds=report["train_seconds"], artifact_object_id=uuid.UUID(artifact_id),
        artifact_sha256=artifact.sha256_hex, artifact_bytes=artifact.plaintext_bytes,
        onnx_object_id=uuid.UUID(onnx_id) if onnx_id else None,
        onnx_sha256=onnx.sha256_hex if onnx else "", onnx_bytes=onnx.plaintext_bytes if onnx else 0,
        training_ranges=ml.training_ranges(profile_columns, report["features"]),
        prepared_means=report.get("prepared_means") or [],
    )

