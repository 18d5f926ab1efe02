"""Plans, effective limits and usage: what a tenant may use and what it used."""

from __future__ import annotations

from datetime import date, datetime, time
from datetime import timezone as dt_timezone

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from . import audit, gate
from .models import LIMIT_FIELDS, Membership, Tenant, TenantUsage, UsageDaily

# Limits an admin may tighten for one member.
MEMBER_LIMIT_FIELDS = ("concurrent_jobs", "cpu_seconds", "predicted_rows", "api_requests_per_minute")
USAGE_KEYS = ("storage_bytes", "datasets", "model_versions", "concurrent_jobs", "cpu_seconds",
              "predicted_rows", "api_requests_per_minute")


def effective_limits(tenant: Tenant) -> dict[str, int]:
    """The plan's limits with the tenant's overrides applied."""
    limits = tenant.plan.limits() if tenant.plan_id else {f: 0 for f in LIMIT_FIELDS}
    for key, value in (tenant.limit_overrides or {}).items():
        if key in limits and value is not None:
            limits[key] = int(value)
    return limits


def month_start(today: date | None = None) -> date:
    today = today or timezone.now().date()
    return today.replace(day=1)


def _month_totals(tenant: Tenant, user_id: int | None = None) -> dict[str, int]:
    rows = UsageDaily.objects.filter(tenant=tenant, day__gte=month_start())
    if user_id is not None:
        rows = rows.filter(user_id=user_id)
    totals = rows.aggregate(cpu_ms=Sum("cpu_ms"), predicted_rows=Sum("predicted_rows"))
    return {"cpu_ms": totals["cpu_ms"] or 0, "predicted_rows": totals["predicted_rows"] or 0}


def gauges(tenant: Tenant) -> TenantUsage:
    usage, _ = TenantUsage.objects.get_or_create(tenant=tenant)
    return usage


def usage_summary(*, tenant: Tenant, running_jobs: int = 0, requests_this_minute: int = 0) -> dict:
    """The body of GET /api/v1/usage/: limits and usage under the same keys."""
    held = gauges(tenant)
    month = _month_totals(tenant)
    period = month_start()
    return {
        "plan": tenant.plan.slug if tenant.plan_id else None,
        "limits": effective_limits(tenant),
        "usage": {
            "storage_bytes": held.storage_bytes,
            "datasets": held.datasets,
            "model_versions": held.model_versions,
            "concurrent_jobs": running_jobs,
            "cpu_seconds": round(month["cpu_ms"] / 1000, 3),
            "predicted_rows": month["predicted_rows"],
            "api_requests_per_minute": requests_this_minute,
        },
        "period_start": datetime.combine(period, time.min, tzinfo=dt_timezone.utc).isoformat().replace("+00:00", "Z"),
    }


def member_limits_set(*, membership: Membership, limits: dict[str, int], actor) -> Membership:
    """Tighter limits for one member; each must fit inside the tenant's own limit."""
    tenant_limits = effective_limits(membership.tenant)
    clean: dict[str, int] = {}
    for key, value in limits.items():
        if key not in MEMBER_LIMIT_FIELDS:
            raise ValidationError({key: f"'{key}' cannot be set per member; choose from "
                                        f"{', '.join(MEMBER_LIMIT_FIELDS)}."})
        if value is None:
            continue
        value = int(value)
        if value < 0:
            raise ValidationError({key: "A limit cannot be negative."})
        if value > tenant_limits[key]:
            raise ValidationError({key: f"{key} can be at most the workspace's limit "
                                        f"({tenant_limits[key]})."})
        clean[key] = value
    with transaction.atomic():
        previous = membership.limits
        membership.limits = clean
        membership.save(update_fields=["limits"])
        gate.bump_user_epoch(membership.user_id)
        audit.record("limits.change", tenant=membership.tenant, object_type="member",
                     object_id=membership.id,
                     details={"email": membership.user.email, "from": previous, "to": clean})
    return membership
