"""The events a tenant admin may subscribe an endpoint to (docs/api.md "Webhooks")."""

from __future__ import annotations

JOB_SUCCEEDED = "job.succeeded"
JOB_FAILED = "job.failed"
MODEL_VERSION_PROMOTED = "model_version.promoted"
MODEL_DRIFT_DETECTED = "model.drift_detected"  # a production version's inputs passed the drift threshold
QUOTA_WARNING = "quota.warning"  # 80 % of a quota used
QUOTA_REACHED = "quota.reached"  # 100 %
TEST = "webhook.test"  # sent on demand to one endpoint; nobody subscribes to it

EVENT_TYPES = {
    JOB_SUCCEEDED: "Job succeeded (training or batch prediction)",
    JOB_FAILED: "Job failed",
    MODEL_VERSION_PROMOTED: "Model version promoted to production",
    MODEL_DRIFT_DETECTED: "Drift detected on a production model version",
    QUOTA_WARNING: "Quota at 80%",
    QUOTA_REACHED: "Quota at 100%",
}

# threshold (percent of the limit) -> event type
QUOTA_THRESHOLDS = ((80, QUOTA_WARNING), (100, QUOTA_REACHED))
