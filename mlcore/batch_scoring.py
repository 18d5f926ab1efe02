"""The batch prediction job: read the dataset in chunks, score, write the encrypted output (CSV
and Parquet) and errors file, and sign a receipt — atomically with the job's success."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tenants.crypto import signing
from tenants.limits import metering, quotas

from . import sampling, storage
from .jobs.handlers import (
    JobCancelled,
    JobContext,
    JobFailed,
    job_handler,
    outputs_kept_only_if_registered,
)
from .models import Dataset, Job, ModelVersion, PredictionOutput
from .storage import DATASETS, MODELS, PREDICTIONS

logger = logging.getLogger(__name__)



def load_pipeline(tenant, version: ModelVersion):
    """The scikit-learn pipeline of a version: decrypted, hash-checked, type-checked."""
    from . import ml

    with storage.open_object(tenant, MODELS, str(version.artifact_object_id)) as stream:
        return ml.load_pipeline(stream.read(), version.artifact_sha256)


def output_ids(output: PredictionOutput) -> dict[str, str]:
    """Object ids of a job's stored files: the CSV output, its Parquet copy, the errors CSV."""
    return {"csv": str(output.output_object_id), "parquet": str(output.parquet_object_id),
            "errors": str(output.errors_object_id)}


@job_handler(Job.Kind.PREDICTION)
def run_prediction(ctx: JobContext) -> None:
    from . import ml

    params = ctx.job.params
    dataset = Dataset.objects.filter(pk=params["dataset"]).first()
    if dataset is None:
        raise JobFailed(f"The dataset '{params.get('dataset_name')}' was deleted before scoring started.")
    version = ModelVersion.objects.select_related("model").filter(pk=params["model_version"]).first()
    if version is None:
        raise JobFailed("The model version was deleted before scoring started.")
    ctx.progress(1, "Loading the model", force=True)
    try:
        pipeline = load_pipeline(ctx.tenant, version)
    except (ml.MLError, storage.StorageError) as exc:
        raise JobFailed(f"The model could not be loaded: {exc}")

    output = PredictionOutput(job=ctx.job, model_version=version)
    # Monitoring samples the inputs of the production version only (mlcore.services.monitoring).
    sampler = (sampling.BatchSampler(list(version.features), settings.PORTAL_MONITORING_SAMPLE_ROWS)
               if version.model.production_version_id == version.id else None)
    ids = output_ids(output)
    writers = {kind: storage.EncryptedWriter(ctx.tenant, PREDICTIONS, object_id) for kind, object_id in ids.items()}
    try:
        with storage.open_object(ctx.tenant, DATASETS, str(dataset.object_id)) as stream:
            summary = ml.batch_predict(
                stream, dataset.format, writers["csv"], writers["errors"], pipeline, version.column_types,
                id_column=params.get("id_column") or None, parquet_writer=writers["parquet"],
                total_rows=dataset.rows, encoding=dataset.encoding,
                threshold=params.get("decision_threshold"),
                progress=lambda f, m: ctx.progress(2 + f * 95, m),
                should_stop=ctx.should_stop, sampler=sampler)
        stored = {kind: writer.commit() for kind, writer in writers.items()}
    except ml.JobCancelled:
        _abort(writers)
        raise JobCancelled()
    except ml.MLError as exc:
        _abort(writers)
        raise JobFailed(str(exc))
    except BaseException:
        _abort(writers)
        raise
    _register(ctx, output, version, dataset, summary, stored)
    if sampler is not None and sampler.rows:
        _store_sample(ctx, version, sampler)


def _store_sample(ctx: JobContext, version: ModelVersion, sampler: sampling.BatchSampler) -> None:
    """After the job succeeded: a sample that cannot be stored is lost, the job is not."""
    from .services import monitoring

    try:
        monitoring.samples_store(tenant=ctx.tenant, version_id=version.id, day=timezone.now().date(),
                                 rows=sampler.rows, predictions=sampler.predictions, source="batch")
    except Exception:
        logger.exception("could not store a batch job's prediction sample",
                         extra={"tenant": ctx.tenant.slug, "job": ctx.job.id})


def _register(ctx: JobContext, output: PredictionOutput, version: ModelVersion, dataset: Dataset,
              summary: dict, stored: dict) -> None:
    receipt = {
        "job": ctx.job.id, "tenant": ctx.tenant.slug, "input_sha256": dataset.sha256,
        "input_rows": summary["rows_read"], "model": version.model_id, "model_version": version.id,
        "version": version.version, "model_artifact_sha256": version.artifact_sha256,
        "output_sha256": stored["csv"].sha256_hex, "rows_scored": summary["rows_scored"],
        "rows_rejected": summary["rows_rejected"],
        "created_at": timezone.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "key_id": signing.key_id(),
    }
    receipt["signature"] = signing.sign(receipt)
    total_bytes = sum(s.plaintext_bytes for s in stored.values())
    with outputs_kept_only_if_registered(ctx.tenant, PREDICTIONS, [s.object_id for s in stored.values()]):
        with transaction.atomic():
            quotas.storage_reserve(ctx.tenant, total_bytes)
            output.output_bytes = stored["csv"].plaintext_bytes
            output.output_sha256 = stored["csv"].sha256_hex
            output.errors_bytes = stored["errors"].plaintext_bytes
            output.parquet_bytes = stored["parquet"].plaintext_bytes
            output.rows_scored = summary["rows_scored"]
            output.rows_rejected = summary["rows_rejected"]
            output.receipt = receipt
            output.save()
            ctx.succeed({"rows_scored": summary["rows_scored"], "rows_rejected": summary["rows_rejected"],
                         "output_bytes": output.output_bytes},
                        message=f"Scored {summary['rows_scored']:,} rows")
            transaction.on_commit(lambda: metering.count_predictions(
                tenant_id=ctx.tenant.id, user_id=ctx.job.created_by_id, rows=summary["rows_scored"]))


def _abort(writers: dict) -> None:
    for writer in writers.values():
        writer.abort()

