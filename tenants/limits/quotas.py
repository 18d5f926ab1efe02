"""Plans, effective limits and usage: what a tenant may use and what it used."""

from __future__ import annotations

from datetime import UTC, datetime, time

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models.functions import Greatest
from django.utils import timezone

from tenants.auditing import audit
from tenants.caches import cache_put
from tenants.errors import ServiceError
from tenants.limits import gate, metering, usage
from tenants.models import LIMIT_FIELDS, Membership, Tenant, TenantUsage, UsageDaily
from tenants.webhooks.services import quota_usage_noted

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


# tenant id -> (tenant epoch, plan, overrides, effective limits, require_admin_2fa), read from the
# database under that epoch. Plan, override and policy changes bump the epoch (tenant_limits_set,
# plan_changed, two_factor.tenant_security_set).
_limits_cache: dict[int, tuple[int, object, dict, dict[str, int], bool]] = {}


def _fresh_entry(tenant: Tenant, epoch: int) -> tuple[int, object, dict, dict[str, int], bool]:
    cached = _limits_cache.get(tenant.id)
    if cached is not None and cached[0] == epoch:
        return cached
    fresh = Tenant.objects.select_related("plan").get(pk=tenant.id)
    cached = (epoch, fresh.plan, dict(fresh.limit_overrides or {}), effective_limits(fresh),
              fresh.require_admin_2fa)
    cache_put(_limits_cache, tenant.id, cached)
    return cached


def limits_cached(tenant: Tenant, *, epoch: int) -> dict[str, int]:
    """effective_limits() for the hot path: rebuilt when the tenant's epoch moves (plan or
    override changes bump it)."""
    return _fresh_entry(tenant, epoch)[3]


def refresh_limits(tenant: Tenant, *, epoch: int) -> None:
    """Give a (possibly cached) tenant object the plan, overrides and two-factor policy current at
    this epoch.

    The routing middleware caches host -> tenant for PORTAL_TENANT_CACHE_SECONDS; the access
    middleware calls this with the epoch the request's gate read, so every limit enforced from
    request.tenant (reservations, job and budget checks, usage pages) is the one in force on this
    request. No SQL while the epoch stays the same.
    """
    if tenant.__dict__.get("_limits_epoch") == epoch:
        return
    _, plan, overrides, _, require_admin_2fa = _fresh_entry(tenant, epoch)
    tenant.plan = plan
    tenant.limit_overrides = dict(overrides)
    tenant.require_admin_2fa = require_admin_2fa
    tenant._limits_epoch = epoch


def forget_cached_limits() -> None:
    _limits_cache.clear()
    _admins_cache.clear()


def _month_totals(tenant: Tenant, user_id: int | None = None) -> dict[str, int]:
    totals = usage.month_totals(tenant) if user_id is None else usage.member_month_totals(tenant, user_id)
    return {"cpu_ms": totals["cpu_ms"], "predicted_rows": totals["predicted_rows"]}


def gauges(tenant: Tenant) -> TenantUsage:
    usage, _ = TenantUsage.objects.get_or_create(tenant=tenant)
    return usage


def usage_summary(*, tenant: Tenant) -> dict:
    """The body of GET /api/v1/usage/: limits and usage under the same keys.

    Predicted rows and API requests are read live from Redis (PostgreSQL gets them each minute).
    """
    from tenants.models import JobTicket

    running_jobs = JobTicket.objects.filter(tenant=tenant, state=JobTicket.State.RUNNING).count()
    held = gauges(tenant)
    month = _month_totals(tenant)
    month["predicted_rows"] = max(month["predicted_rows"], metering.month_predicted_rows(tenant.id))
    period = usage.month_start()
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
            "api_requests_per_minute": gate.requests_this_minute(tenant.id),
        },
        "period_start": datetime.combine(period, time.min, tzinfo=UTC).isoformat().replace("+00:00", "Z"),
    }


def member_usage_summary(*, tenant: Tenant, user_id: int, limits: dict) -> dict:
    """A member's own limits (Membership.limits, those an admin set) and what they used of each,
    under the usage keys: {"member_limits": {...}, "member_usage": {...}} ({} when none is set)."""
    from tenants.models import JobTicket

    own = {key: int(value) for key, value in (limits or {}).items()
           if key in MEMBER_LIMIT_FIELDS and value is not None}
    used: dict[str, int | float] = {}
    if "cpu_seconds" in own:
        used["cpu_seconds"] = round(_month_totals(tenant, user_id)["cpu_ms"] / 1000, 3)
    if "predicted_rows" in own:
        used["predicted_rows"] = max(_month_totals(tenant, user_id)["predicted_rows"],
                                     metering.member_month_predicted_rows(tenant.id, user_id))
    if "concurrent_jobs" in own:
        used["concurrent_jobs"] = JobTicket.objects.filter(
            tenant=tenant, user_id=user_id, state=JobTicket.State.RUNNING).count()
    if "api_requests_per_minute" in own:
        used["api_requests_per_minute"] = gate.member_requests_this_minute(tenant.id, user_id)
    return {"member_limits": own, "member_usage": used}


def member_limits_clean(*, tenant: Tenant, limits: dict[str, int]) -> dict[str, int]:
    """Tighter limits for one member, checked: each must fit inside the tenant's own limit.

    Written by tenants.services.membership_update, with any role change, in one transaction.
    """
    tenant_limits = effective_limits(tenant)
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
    return clean


# --- enforcement of held amounts (storage, datasets, model versions) ------------------------------
class QuotaExceeded(ServiceError):
    """A request would go over a limit. status: 413 for bytes/rows/columns, 403 for counts/budgets."""

    code = "quota-exceeded"

    def __init__(self, message: str, *, quota: str, used: int, limit: int, status: int = 403):
        super().__init__(message, status=status, quota=quota, used=used, limit=limit)
        self.quota = quota
        self.used = used
        self.limit = limit


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if abs(value) < 1024 or unit == "TB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"


def _try_add(tenant: Tenant, field: str, amount: int, limit: int) -> bool:
    """Atomic check-and-add: concurrent uploads cannot both squeeze under the limit."""
    gauges(tenant)
    updated = (
        TenantUsage.objects.filter(tenant=tenant)
        .filter(**{f"{field}__lte": limit - amount})
        .update(**{field: models.F(field) + amount})
    )
    return updated == 1


def storage_reserve(tenant: Tenant, nbytes: int) -> None:
    if nbytes <= 0:
        return
    limit = effective_limits(tenant)["storage_bytes"]
    if not _try_add(tenant, "storage_bytes", nbytes, limit):
        used = gauges(tenant).storage_bytes
        raise QuotaExceeded(
            f"Storage limit reached: the workspace uses {human_bytes(used)} of its "
            f"{human_bytes(limit)}, and this file does not fit. Delete datasets or ask "
            f"{whom_to_ask(tenant)} about a larger plan.",
            quota="storage_bytes", used=used, limit=limit, status=413,
        )
    _announce_held(tenant, "storage_bytes", limit)


def storage_release(tenant: Tenant, nbytes: int) -> None:
    if nbytes > 0:
        TenantUsage.objects.filter(tenant=tenant).update(
            storage_bytes=Greatest(models.F("storage_bytes") - nbytes, 0))


_COUNT_LABELS = {"datasets": "datasets", "model_versions": "model versions"}


def count_reserve(tenant: Tenant, quota: str) -> None:
    limit = effective_limits(tenant)[quota]
    if not _try_add(tenant, quota, 1, limit):
        used = getattr(gauges(tenant), quota)
        label = _COUNT_LABELS[quota]
        raise QuotaExceeded(
            f"Your plan allows {limit} {label} and the workspace has {used}; delete some first, "
            f"or ask {whom_to_ask(tenant)} about a larger plan.",
            quota=quota, used=used, limit=limit, status=403,
        )
    _announce_held(tenant, quota, limit)


def _announce_held(tenant: Tenant, quota: str, limit: int) -> None:
    """Webhook events when a held quota passes 80 % or 100 % (once a month each): one read of the
    gauge after a reservation, and nothing more below 80 %."""
    used = TenantUsage.objects.filter(tenant=tenant).values_list(quota, flat=True).first() or 0
    quota_usage_noted(tenant=tenant, quota=quota, used=used, limit=limit)


def count_release(tenant: Tenant, quota: str) -> None:
    TenantUsage.objects.filter(tenant=tenant).update(**{quota: Greatest(models.F(quota) - 1, 0)})


# --- budgets (per month) and metering ----------------------------------------------------------
def _member_limit(tenant: Tenant, user_id: int | None, key: str) -> int | None:
    if user_id is None:
        return None
    limits = Membership.objects.filter(tenant=tenant, user_id=user_id).values_list("limits", flat=True).first()
    return int(limits[key]) if limits and key in limits else None


def cpu_budget_check(tenant: Tenant, *, user_id: int | None = None, need: float = 0.0) -> None:
    """A job is refused when the month's CPU-seconds are spent (tenant's, or the member's own), or
    when fewer than `need` are left (a model search needs a few to try anything)."""
    limit_s = effective_limits(tenant)["cpu_seconds"]
    used_s = _month_totals(tenant)["cpu_ms"] / 1000
    if used_s >= limit_s or limit_s - used_s < need:
        raise QuotaExceeded(
            f"The workspace has used {used_s:,.0f} of its {limit_s:,} CPU-seconds this month; "
            f"no new job can start until next month or a larger plan (ask "
            f"{whom_to_ask(tenant, user_id=user_id)}).",
            quota="cpu_seconds", used=int(used_s), limit=limit_s, status=403)
    member_limit = _member_limit(tenant, user_id, "cpu_seconds")
    if member_limit is not None:
        mine = _month_totals(tenant, user_id)["cpu_ms"] / 1000
        if mine >= member_limit or member_limit - mine < need:
            raise QuotaExceeded(
                f"You have used {mine:,.0f} of your {member_limit:,} CPU-seconds this month; "
                f"ask {whom_to_ask(tenant, user_id=user_id)} to raise your limit.",
                quota="cpu_seconds", used=int(mine), limit=member_limit, status=403)


def cpu_seconds_remaining(tenant: Tenant, *, user_id: int | None = None) -> float:
    """CPU-seconds left this month: the workspace's, or the member's own when that is less."""
    left = effective_limits(tenant)["cpu_seconds"] - _month_totals(tenant)["cpu_ms"] / 1000
    member_limit = _member_limit(tenant, user_id, "cpu_seconds")
    if member_limit is not None:
        left = min(left, member_limit - _month_totals(tenant, user_id)["cpu_ms"] / 1000)
    return max(left, 0.0)


def predicted_rows_check(*, rows: int, limit: int, used: int, member_limit: int | None = None,
                         member_used: int = 0, tenant: Tenant | None = None,
                         user_id: int | None = None) -> None:
    """403 when the month's predicted rows cannot cover `rows` more: the workspace's budget, then
    the member's own limit (Membership.limits["predicted_rows"]) when an admin set one.

    The callers read the counts (online: from the request gate, no SQL; batch: from Redis), so the
    same rule holds on every path.
    """
    if used + rows > limit:
        raise QuotaExceeded(
            f"This would go over the month's prediction budget: {used:,} of {limit:,} rows used, "
            f"{rows:,} more asked; ask {whom_to_ask(tenant, user_id=user_id)} about a larger plan.",
            quota="predicted_rows", used=used, limit=limit, status=403)
    if member_limit is not None and member_used + rows > member_limit:
        raise QuotaExceeded(
            f"You have used {member_used:,} of your {member_limit:,} predicted rows this month; "
            f"ask {whom_to_ask(tenant, user_id=user_id)} to raise your limit.",
            quota="predicted_rows", used=member_used, limit=member_limit, status=403)


def member_predicted_rows_limit(limits: dict) -> int | None:
    """A member's own predicted-rows limit from Membership.limits (None: only the workspace's)."""
    value = (limits or {}).get("predicted_rows")
    return None if value is None else int(value)


def _usage_row(tenant: Tenant, user_id: int | None) -> UsageDaily:
    today = timezone.now().date()
    row, _ = UsageDaily.objects.get_or_create(tenant=tenant, user_id=user_id, day=today)
    return row


def meter_job(tenant: Tenant, *, user_id: int | None, cpu_ms: int, peak_memory_bytes: int) -> None:
    row = _usage_row(tenant, user_id)
    UsageDaily.objects.filter(pk=row.pk).update(
        cpu_ms=models.F("cpu_ms") + cpu_ms, jobs=models.F("jobs") + 1,
        peak_memory_bytes=Greatest(models.F("peak_memory_bytes"), peak_memory_bytes))
    usage.invalidate(tenant)
    quota_usage_noted(tenant=tenant, quota="cpu_seconds", used=round(_month_totals(tenant)["cpu_ms"] / 1000, 3),
                      limit=effective_limits(tenant)["cpu_seconds"])


def predicted_rows_thresholds_check() -> int:
    """After each usage sync (every minute): webhook events for the tenants whose month's predicted
    rows passed 80 % or 100 % of their budget (once a month each). Rows are counted in Redis per
    request; announcing from here keeps that path free of it. Returns the events emitted."""
    emitted = 0
    for tenant in Tenant.objects.exclude(schema_name="public").select_related("plan"):
        used = metering.month_predicted_rows(tenant.id)
        if used:
            emitted += len(quota_usage_noted(tenant=tenant, quota="predicted_rows", used=used,
                                             limit=effective_limits(tenant)["predicted_rows"]))
    return emitted


# --- operators and admins change limits ---------------------------------------------------------
def _clean_overrides(overrides: dict) -> dict[str, int]:
    """The overrides without blanks (blank: the plan's value), checked like Tenant.clean does."""
    from tenants.models import limit_overrides_errors

    errors = limit_overrides_errors(overrides or {})
    if errors:
        raise ValidationError({"limit_overrides": list(errors.values())})
    return {key: value for key, value in (overrides or {}).items() if value not in (None, "")}


def tenant_limits_set(*, tenant: Tenant, plan=None, overrides: dict | None = None) -> Tenant:
    """A tenant's plan and per-tenant overrides; every process applies them on its next request."""
    before = {"plan": tenant.plan.slug if tenant.plan_id else None, "overrides": dict(tenant.limit_overrides or {})}
    with transaction.atomic():
        if plan is not None:
            tenant.plan = plan
        if overrides is not None:
            tenant.limit_overrides = _clean_overrides(overrides)
        Tenant.objects.filter(pk=tenant.pk).update(plan=tenant.plan, limit_overrides=tenant.limit_overrides)
        gate.bump_tenant_epoch(tenant.id)
        audit.record("limits.change", tenant=tenant, object_type="tenant", object_id=tenant.id,
                     details={"from": before, "to": {"plan": tenant.plan.slug if tenant.plan_id else None,
                                                     "overrides": tenant.limit_overrides}})
    return tenant


def plan_changed(plan) -> None:
    """After an operator edits a plan: tenants on it see the new limits on their next request."""
    for tenant in plan.tenants.all():
        gate.bump_tenant_epoch(tenant.id)
        audit.record("limits.change", tenant=tenant, object_type="plan", object_id=plan.id,
                     details={"plan": plan.slug, "limits": plan.limits(),
                              "fair_share_weight": plan.fair_share_weight})


# --- who can raise a limit, named in refusals -----------------------------------------------------
ADMINS_CACHE_SECONDS = 60
# tenant id -> (expiry, [(user id, "Alice (alice@acme.test)")]): refusals can come in floods (a
# script over its budget), and naming the admins must not cost each of them a query.
_admins_cache: dict[int, tuple[float, list[tuple[int, str]]]] = {}


def _tenant_admins(tenant: Tenant) -> list[tuple[int, str]]:
    import time

    from tenants.models import Role

    cached = _admins_cache.get(tenant.id)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    rows = (Membership.objects.filter(tenant_id=tenant.id, role=Role.ADMIN, user__is_active=True)
            .select_related("user").order_by("user__email"))
    admins = [(m.user_id, f"{m.user.full_name} ({m.user.email})" if m.user.full_name else m.user.email)
              for m in rows]
    cache_put(_admins_cache, tenant.id, (time.monotonic() + ADMINS_CACHE_SECONDS, admins))
    return admins


def whom_to_ask(tenant: Tenant | None, *, user_id: int | None = None) -> str:
    """The tenant's admins by name and e-mail ("Alice (alice@acme.test)"), the refused person
    left out; operators when no one else administers the workspace."""
    others = [name for uid, name in (_tenant_admins(tenant) if tenant is not None else [])
              if uid != user_id]
    if not others:
        return "the platform's operators"
    if len(others) > 3:
        return ", ".join(others[:3]) + " or another admin"
    return " or ".join(others)
