"""Tenant schemas: datasets, jobs, models and predictions.

Every row here lives in one tenant's schema; users are global (public schema). Uploaded bytes never
live in these tables: files, profiles and previews are encrypted objects in storage
(mlcore/storage.py), named by ``object_id``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase


class SharePermission(models.TextChoices):
    NONE = "", "Not shared"
    VIEW = "view", "View"
    EDIT = "edit", "Edit"


class Dataset(models.Model):
    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        TSV = "tsv", "TSV"
        CSV_GZ = "csv.gz", "CSV (gzip)"
        TSV_GZ = "tsv.gz", "TSV (gzip)"
        PARQUET = "parquet", "Parquet"

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=5000)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                              related_name="+")
    object_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    original_filename = models.CharField(max_length=255)
    format = models.CharField(max_length=10, choices=Format.choices)
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    rows = models.BigIntegerField()
    column_count = models.IntegerField()
    # The text encoding the file is read as (a Python codec name: "utf-8", "cp1252", "utf-16"...);
    # blank for Parquet. The stored file keeps its original bytes: readers transcode.
    encoding = models.CharField(max_length=40, blank=True, default="utf-8")
    # Workspace-wide share ("everyone in the tenant"); per-person grants are guardian rows.
    everyone_permission = models.CharField(max_length=4, choices=SharePermission.choices, blank=True,
                                           default=SharePermission.NONE)
    # Versions: each upload to an existing dataset is a row of its own (so whatever reads one
    # dataset keeps working) in the same series, numbered from 1. A series id, not a foreign key to
    # the first version, so that deleting any one version leaves the others whole.
    series = models.UUIDField(default=uuid.uuid4, editable=False)
    version = models.PositiveIntegerField(default=1)
    # The highest number the series ever gave, on each of its rows: deleting the latest version
    # does not free its number, so "version 3" never names two different files.
    series_last_version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="dataset_owner_created")]
        constraints = [
            models.UniqueConstraint(fields=["series", "version"], name="dataset_series_version_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class DatasetUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Dataset, on_delete=models.CASCADE)


class DatasetGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Dataset, on_delete=models.CASCADE)


class ModelPermission(models.TextChoices):
    NONE = "", "Not shared"
    VIEW = "view", "View"
    USE = "use", "Use"
    EDIT = "edit", "Edit"


class Job(models.Model):
    """One run of work (training, batch prediction) as its owner sees it.

    Scheduling state lives in the public ledger (tenants.JobTicket); both change together.
    """

    class Kind(models.TextChoices):
        TRAINING = "training", "Training"
        PREDICTION = "prediction", "Batch prediction"
        SEARCH = "search", "Model search"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    params = models.JSONField(default=dict)
    result = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                   related_name="+")
    dataset = models.ForeignKey(Dataset, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="jobs")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)  # the owner was e-mailed the outcome
    cpu_seconds = models.FloatField(default=0.0)
    # A job that yields its worker between steps (a model search) runs in several turns: the
    # CPU-seconds of its finished turns, which cpu_seconds adds the running turn's to.
    prior_cpu_seconds = models.FloatField(default=0.0)
    peak_memory_bytes = models.BigIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["created_by", "-created_at"], name="job_owner_created")]

    def __str__(self) -> str:
        return f"{self.kind} job {self.id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.TERMINAL


class MLModel(models.Model):
    """A named model; every training run adds a version."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True, max_length=5000)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                              related_name="+")
    task = models.CharField(max_length=20)
    production_version = models.ForeignKey("ModelVersion", on_delete=models.SET_NULL, null=True,
                                           blank=True, related_name="+")
    everyone_permission = models.CharField(max_length=4, choices=ModelPermission.choices, blank=True,
                                           default=ModelPermission.NONE)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [("use_mlmodel", "Can use the model for predictions")]

    def __str__(self) -> str:
        return self.name


class ModelVersion(models.Model):
    model = models.ForeignKey(MLModel, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    # One version per training job: a re-delivered job can never add a second one.
    job = models.OneToOneField(Job, on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="model_version")
    dataset = models.ForeignKey(Dataset, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="+")
    dataset_name = models.CharField(max_length=200)
    dataset_version = models.PositiveIntegerField(default=1)  # the version it was trained on
    dataset_rows = models.BigIntegerField(default=0)
    target = models.CharField(max_length=300)
    features = models.JSONField(default=list)
    column_types = models.JSONField(default=dict)
    task = models.CharField(max_length=20)
    algorithm = models.CharField(max_length=40)
    params = models.JSONField(default=dict)
    evaluation = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)
    charts = models.JSONField(default=dict, blank=True)
    feature_importance = models.JSONField(default=dict, blank=True)
    classes = models.JSONField(default=list, blank=True)
    # What the training data held per feature (mlcore/ml/ranges.py): ranges and typical values.
    # Empty for versions trained before it was recorded.
    training_ranges = models.JSONField(default=dict, blank=True)
    # Linear models only: the mean of each prepared column over the training rows, the baseline
    # of explanations (mlcore/ml/explain.py). Empty for trees and for versions trained before.
    prepared_means = models.JSONField(default=list, blank=True)
    # Two-class models only: predict the positive class (classes[1]) when its probability is at
    # least this; None means the estimator's own rule (the more probable class).
    decision_threshold = models.FloatField(null=True, blank=True)
    library_versions = models.JSONField(default=dict, blank=True)
    train_seconds = models.FloatField(default=0.0)
    artifact_object_id = models.UUIDField(default=uuid.uuid4, unique=True)
    artifact_sha256 = models.CharField(max_length=64)
    artifact_bytes = models.BigIntegerField(default=0)
    onnx_object_id = models.UUIDField(null=True, blank=True)
    onnx_sha256 = models.CharField(max_length=64, blank=True)
    onnx_bytes = models.BigIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["model", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="model_version_unique_number"),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version}"

    @property
    def stored_bytes(self) -> int:
        return self.artifact_bytes + self.onnx_bytes


class MLModelUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(MLModel, on_delete=models.CASCADE)


class MLModelGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(MLModel, on_delete=models.CASCADE)


class PredictionOutput(models.Model):
    """The encrypted output and errors file of a batch prediction job, and its receipt."""

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="prediction_output")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.SET_NULL, null=True,
                                      related_name="+")
    output_object_id = models.UUIDField(default=uuid.uuid4, unique=True)
    output_bytes = models.BigIntegerField(default=0)
    output_sha256 = models.CharField(max_length=64, blank=True)
    parquet_object_id = models.UUIDField(default=uuid.uuid4, unique=True)
    parquet_bytes = models.BigIntegerField(default=0)
    errors_object_id = models.UUIDField(default=uuid.uuid4, unique=True)
    errors_bytes = models.BigIntegerField(default=0)
    rows_scored = models.BigIntegerField(default=0)
    rows_rejected = models.BigIntegerField(default=0)
    receipt = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"output of job {self.job_id}"

    @property
    def stored_bytes(self) -> int:
        return self.output_bytes + self.parquet_bytes + self.errors_bytes


# --- monitoring of production versions (mlcore/services/monitoring.py) ----------------------------
class PredictionSample(models.Model):
    """Sampled inputs (and predictions) of a production version: an encrypted JSON-lines object
    in storage, counted in the tenant's storage. At most PORTAL_MONITORING_SAMPLE_ROWS rows per
    version and day."""

    class Source(models.TextChoices):
        ONLINE = "online", "Online"
        BATCH = "batch", "Batch"

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    source = models.CharField(max_length=10, choices=Source.choices)
    object_id = models.UUIDField(default=uuid.uuid4, unique=True)
    rows = models.PositiveIntegerField()
    size_bytes = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["model_version", "day"], name="sample_version_day")]

    def __str__(self) -> str:
        return f"{self.rows} sampled rows of version {self.model_version_id} on {self.day}"


class MonitoringBaseline(models.Model):
    """What the training data held per feature, in the bins drift is measured with (ml/drift.py);
    kept so monitoring goes on after the training dataset is deleted."""

    model_version = models.OneToOneField(ModelVersion, on_delete=models.CASCADE, related_name="+")
    features = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"baseline of version {self.model_version_id}"


class MonitoringReport(models.Model):
    """One day of a production version's sampled inputs compared with its training data."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="monitoring_reports")
    day = models.DateField()
    rows = models.PositiveIntegerField(default=0)
    max_psi = models.FloatField(null=True, blank=True)
    max_psi_feature = models.CharField(max_length=300, blank=True)
    out_of_range = models.FloatField(null=True, blank=True)  # the worst feature's share
    missing_rate = models.FloatField(null=True, blank=True)  # the worst feature's rate
    threshold = models.FloatField()
    drifted = models.BooleanField(default=False)
    details = models.JSONField(default=dict, blank=True)  # {"features": {...}, "predictions": {...}}
    notified_at = models.DateTimeField(null=True, blank=True)  # the owner was told of this crossing
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["model_version", "-day"]
        constraints = [models.UniqueConstraint(fields=["model_version", "day"], name="monitoring_report_day")]

    def __str__(self) -> str:
        return f"monitoring of version {self.model_version_id} on {self.day}"


class SearchTrial(models.Model):
    """One trial of a model search (a Job of kind "search"): a candidate fitted on a share of the
    training rows and scored on validation rows. Written when the trial ends; kept when the search
    is cancelled."""

    class Status(models.TextChoices):
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="trials")
    number = models.PositiveIntegerField()
    rung = models.PositiveSmallIntegerField()
    candidate = models.PositiveIntegerField()
    fraction = models.FloatField()
    rows = models.PositiveIntegerField(default=0)
    algorithm = models.CharField(max_length=40)
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices)
    metric = models.CharField(max_length=20)
    score = models.FloatField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=500, blank=True)
    seconds = models.FloatField(default=0.0)
    cpu_seconds = models.FloatField(default=0.0)
    finished_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["job", "number"]
        constraints = [
            # A turn re-run after its process died never records the same trial twice.
            models.UniqueConstraint(fields=["job", "rung", "candidate"], name="search_trial_unique_step"),
        ]

    def __str__(self) -> str:
        return f"trial {self.number} of job {self.job_id}"


class Schedule(models.Model):
    """Work that runs by the clock as the member who made it: score the latest version of a
    dataset with a model's production version, or retrain on it and propose a version for review."""

    class Action(models.TextChoices):
        SCORE = "score", "Score the latest version"
        RETRAIN = "retrain", "Retrain and propose a new version"

    class Frequency(models.TextChoices):
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"
        CRON = "cron", "Cron expression"

    action = models.CharField(max_length=10, choices=Action.choices)
    # The dataset named when it was made, and its series: each run takes the series' latest version.
    dataset = models.ForeignKey(Dataset, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    dataset_series = models.UUIDField()
    dataset_name = models.CharField(max_length=200)
    model = models.ForeignKey(MLModel, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    model_name = models.CharField(max_length=200)
    frequency = models.CharField(max_length=10, choices=Frequency.choices)
    cron = models.CharField(max_length=100)  # what daily and weekly mean too, in UTC
    next_run_at = models.DateTimeField()
    paused = models.BooleanField(default=False)
    paused_reason = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_run_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["paused", "next_run_at"], name="schedule_due")]

    def __str__(self) -> str:
        return f"{self.action} {self.dataset_name} ({self.cron})"


class ScheduleRun(models.Model):
    class Outcome(models.TextChoices):
        STARTED = "started", "Job started"
        FAILED = "failed", "Could not start"

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="runs")
    started_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField()
    job = models.ForeignKey(Job, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    dataset = models.ForeignKey(Dataset, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"run of schedule {self.schedule_id} ({self.outcome})"
