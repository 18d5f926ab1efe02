"""Monitoring of production versions: sampled inputs, daily drift reports, alerts.

- `samples_store`: a sample of a version's inputs and predictions (from mlcore.sampling) becomes
  an encrypted object in storage, counted in the tenant's storage like any file. A full storage
  or a version's day already sampled (PORTAL_MONITORING_SAMPLE_ROWS) means the sample is
  dropped, silently: monitoring never costs a prediction.
- `monitoring_report_run`: one version's day compared with its training data (ml/drift.py),
  stored as a MonitoringReport (run again, the day's report is replaced). The daily beat task
  (mlcore.monitoring_daily) runs it for every production version; `manage.py monitor_models`
  on demand.
- A report whose worst PSI passes the threshold, after one that did not (or none), is a
  crossing: the model's owner is e-mailed and the `model.drift_detected` webhook event sent,
  once (notified_at is set in the transaction holding the report's row).
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import date

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone
from django_tenants.utils import tenant_context

from tenants.accounts.hosts import tenant_url
from tenants.auditing import audit
from tenants.limits import quotas
from tenants.models import Tenant
from tenants.webhooks import events as webhook_events
from tenants.webhooks.services import event_emit

from .. import storage
from ..ml import drift
from ..models import MLModel, ModelVersion, MonitoringBaseline, MonitoringReport, PredictionSample
from ..storage import SAMPLES
from .datasets import dataset_profile

logger = logging.getLogger(__name__)


# --- samples -----------------------------------------------------------------------------------
def samples_store(*, tenant: Tenant, version_id: int, day: date, rows: list[dict], predictions: list,
                  source: str) -> int:
    """Store up to the day's remaining room of `rows`; returns the rows stored (0 when skipped)."""
    with tenant_context(tenant):
        version = ModelVersion.objects.filter(pk=version_id).only("id", "features").first()
        if version is None:
            return 0
        taken = (PredictionSample.objects.filter(model_version_id=version_id, day=day)
                 .aggregate(n=Sum("rows"))["n"] or 0)
        room = settings.PORTAL_MONITORING_SAMPLE_ROWS - taken
        if room <= 0:
            return 0
        features = list(version.features)
        lines = [json.dumps({"x": {name: row.get(name) for name in features}, "p": prediction}, default=str)
                 for row, prediction in list(zip(rows, predictions, strict=False))[:room]]
        object_id = str(uuid.uuid4())
        with storage.EncryptedWriter(tenant, SAMPLES, object_id) as writer:
            writer.write(("\n".join(lines) + "\n").encode())
            stored = writer.commit()
        try:
            with transaction.atomic():
                quotas.storage_reserve(tenant, stored.plaintext_bytes)
                PredictionSample.objects.create(model_version_id=version_id, day=day, source=source,
                                                object_id=uuid.UUID(object_id), rows=len(lines),
                                                size_bytes=stored.plaintext_bytes)
        except quotas.QuotaExceeded:
            storage.delete_object(tenant, SAMPLES, object_id)
            logger.info("prediction sample skipped: storage full",
                        extra={"tenant": tenant.slug, "model_version": version_id})
            return 0
        except BaseException:
            storage.delete_object(tenant, SAMPLES, object_id)
            raise
    return len(lines)


def samples_read(*, tenant: Tenant, version: ModelVersion, day: date) -> tuple[list[dict], list]:
    rows, predictions = [], []
    for sample in PredictionSample.objects.filter(model_version=version, day=day).order_by("id"):
        try:
            with storage.open_object(tenant, SAMPLES, str(sample.object_id)) as stream:
                text = stream.read().decode()
        except storage.StorageError:
            logger.warning("a prediction sample could not be read", extra={"tenant": tenant.slug,
                                                                          "sample": sample.id})
            continue
        for line in text.splitlines():
            if line:
                item = json.loads(line)
                rows.append(item["x"])
                predictions.append(item["p"])
    return rows, predictions


def samples_release(*, tenant: Tenant, version_ids: list[int]) -> None:
    """Before versions are deleted (inside that transaction): their samples' storage is given
    back now, their files are deleted once it commits."""
    samples = list(PredictionSample.objects.filter(model_version_id__in=version_ids)
                   .values_list("object_id", "size_bytes"))
    if not samples:
        return
    quotas.storage_release(tenant, sum(size for _, size in samples))
    object_ids = [str(object_id) for object_id, _ in samples]
    transaction.on_commit(lambda: [storage.delete_object(tenant, SAMPLES, oid) for oid in object_ids])


# --- reports -----------------------------------------------------------------------------------
def _baseline(tenant: Tenant, version: ModelVersion) -> dict | None:
    kept = MonitoringBaseline.objects.filter(model_version=version).first()
    if kept is not None:
        return kept.features
    if version.dataset is None:
        return None  # trained before baselines were kept, and its dataset is gone
    try:
        profile = dataset_profile(tenant=tenant, dataset=version.dataset)
    except storage.StorageError:
        return None
    return monitoring_baseline_keep(version=version, profile_columns=profile["columns"],
                                    rows=version.dataset.rows).features


def monitoring_baseline_keep(*, version: ModelVersion, profile_columns: list[dict], rows: int) -> MonitoringBaseline:
    """When a version is registered: what its training data held, in drift's bins."""
    features = drift.baseline_from_profile(profile_columns, list(version.features), rows)
    baseline, _ = MonitoringBaseline.objects.get_or_create(model_version=version, defaults={"features": features})
    return baseline


def drift_threshold() -> float:
    return settings.PORTAL_DRIFT_PSI_THRESHOLD


def monitoring_report_run(*, tenant: Tenant, version_id: int, day: date) -> MonitoringReport | None:
    """Compare a version's sampled day with its training data; None when the version is gone or
    has no training profile to compare with."""
    with tenant_context(tenant):
        version = ModelVersion.objects.select_related("model", "dataset").filter(pk=version_id).first()
        if version is None:
            return None
        baseline = _baseline(tenant, version)
        if baseline is None:
            logger.info("no training profile to monitor against", extra={"tenant": tenant.slug,
                                                                       "model_version": version_id})
            return None
        rows, predictions = samples_read(tenant=tenant, version=version, day=day)
        result = drift.drift_report(baseline, rows, predictions, version.task)
        threshold = drift_threshold()
        drifted = result["max_psi"] is not None and result["max_psi"] > threshold
        with transaction.atomic():
            report, _ = MonitoringReport.objects.select_for_update().update_or_create(
                model_version=version, day=day, defaults={
                    "rows": result["rows"], "max_psi": result["max_psi"],
                    "max_psi_feature": result["max_psi_feature"][:300],
                    "out_of_range": result["out_of_range"], "missing_rate": result["missing_rate"],
                    "threshold": threshold, "drifted": drifted,
                    "details": {"features": result["features"], "predictions": result["predictions"]}})
            if drifted and report.notified_at is None and not _drifted_before(report):
                _announce(tenant, version, report)
    return report


def _drifted_before(report: MonitoringReport) -> bool:
    """Whether the last report before this one already passed the threshold (same crossing)."""
    previous = (MonitoringReport.objects.filter(model_version_id=report.model_version_id, day__lt=report.day)
                .order_by("-day").first())
    return previous is not None and previous.drifted


def _announce(tenant: Tenant, version: ModelVersion, report: MonitoringReport) -> None:
    model = version.model
    event_emit(tenant=tenant, event_type=webhook_events.MODEL_DRIFT_DETECTED, data={
        "model": {"id": model.id, "name": model.name},
        "model_version": {"id": version.id, "version": version.version},
        "report": {"day": report.day.isoformat(), "rows": report.rows, "max_psi": report.max_psi,
                   "feature": report.max_psi_feature, "threshold": report.threshold,
                   "out_of_range": report.out_of_range, "missing_rate": report.missing_rate}})
    owner = model.owner
    if owner is not None and owner.is_active and owner.email:
        subject, body = _message(tenant, version, report)
        send_mail(subject, body, None, [owner.email], fail_silently=False)
    MonitoringReport.objects.filter(pk=report.pk).update(notified_at=timezone.now())
    audit.record("model.drift_detected", tenant=tenant, object_type="model_version", object_id=version.id,
                 details={"model": model.id, "version": version.version, "day": report.day.isoformat(),
                          "max_psi": report.max_psi, "feature": report.max_psi_feature})


def _message(tenant: Tenant, version: ModelVersion, report: MonitoringReport) -> tuple[str, str]:
    model = version.model
    lines = [f"The inputs of {model.name} v{version.version} (in production in {tenant.name}) on "
             f"{report.day.isoformat()} differ from its training data.", "",
             f"Largest population stability index: {report.max_psi:.3f} on '{report.max_psi_feature}' "
             f"(threshold {report.threshold:g}), over {report.rows:,} sampled rows.", ""]
    if report.out_of_range is not None:
        lines.append(f"Largest share of values outside the training range: {report.out_of_range:.1%}.")
    lines += ["", f"Monitoring: {tenant_url(tenant, reverse('model_detail', args=[model.id]))}#monitoring", "",
              "You get this e-mail once each time the drift passes the threshold."]
    return f"[{tenant.name}] Drift detected on {model.name} v{version.version}", "\n".join(lines)


def production_version_ids() -> list[int]:
    """In the current tenant's schema."""
    return list(MLModel.objects.exclude(production_version=None).values_list("production_version_id", flat=True))


def monitoring_run_all(*, tenant: Tenant, day: date) -> list[MonitoringReport]:
    """Every production version of the tenant, for `day` (the command's path)."""
    with tenant_context(tenant):
        version_ids = production_version_ids()
    reports = []
    for version_id in version_ids:
        report = monitoring_report_run(tenant=tenant, version_id=version_id, day=day)
        if report is not None:
            reports.append(report)
    return reports
