"""Reads of metered usage (month totals, daily history, per-member breakdown), cached.

The aggregates are sums over UsageDaily rows; they are cached in the tenant-aware cache (keys
carry the tenant's schema) and invalidated whenever the rows change: a job is metered or the
minute sync moves Redis counters into PostgreSQL. What must be exact (stored bytes, counts held)
is read from TenantUsage directly and never cached.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from django.core.cache import cache
from django.db.models import Count, Max, Sum
from django.utils import timezone
from django_tenants.utils import schema_context

from tenants.auditing.audit_export import csv_safe
from tenants.models import JobTicket, Membership, Tenant, UsageDaily

HISTORY_DAYS = 30
CACHE_SECONDS = 300
_METRICS = ("cpu_ms", "predicted_rows", "api_requests", "jobs")


def _key(tenant: Tenant, name: str) -> str:
    return f"usage:{tenant.id}:{name}"


def invalidate(tenant: Tenant) -> None:
    """Drop the cached aggregates of one tenant (called by whatever changes UsageDaily)."""
    with schema_context(tenant.schema_name):
        cache.delete_many([_key(tenant, name) for name in ("month", "members", "history")])


def _cached(tenant: Tenant, name: str, build):
    with schema_context(tenant.schema_name):
        value = cache.get(_key(tenant, name))
        if value is None:
            value = build()
            cache.set(_key(tenant, name), value, CACHE_SECONDS)
    return value


def month_start(today: date | None = None) -> date:
    return (today or timezone.now().date()).replace(day=1)


def month_totals(tenant: Tenant) -> dict[str, int]:
    def build():
        sums = (UsageDaily.objects.filter(tenant=tenant, day__gte=month_start())
                .aggregate(**{m: Sum(m) for m in _METRICS}))
        return {m: sums[m] or 0 for m in _METRICS}

    return _cached(tenant, "month", build)


def member_month_totals(tenant: Tenant, user_id: int) -> dict[str, int]:
    """One member's month (for their own limits): not cached, a single indexed sum."""
    sums = (UsageDaily.objects.filter(tenant=tenant, user_id=user_id, day__gte=month_start())
            .aggregate(**{m: Sum(m) for m in _METRICS}))
    return {m: sums[m] or 0 for m in _METRICS}


def member_breakdown(tenant: Tenant) -> list[dict]:
    """This month per member, with running jobs and their own limits: the admins' table."""
    def build():
        rows = {r["user_id"]: r for r in UsageDaily.objects.filter(tenant=tenant, day__gte=month_start())
                .values("user_id").annotate(**{m: Sum(m) for m in _METRICS},
                                            peak_memory_bytes=Max("peak_memory_bytes"))}
        running = {r["user_id"]: r["n"] for r in JobTicket.objects.filter(
            tenant=tenant, state=JobTicket.State.RUNNING).values("user_id").annotate(n=Count("id"))}
        out = []
        for m in Membership.objects.filter(tenant=tenant).select_related("user").order_by("user__email"):
            used = rows.get(m.user_id, {})
            out.append({"user_id": m.user_id, "email": m.user.email, "role": m.role, "limits": m.limits,
                        "cpu_seconds": round((used.get("cpu_ms") or 0) / 1000, 1),
                        "jobs": used.get("jobs") or 0, "predicted_rows": used.get("predicted_rows") or 0,
                        "api_requests": used.get("api_requests") or 0,
                        "peak_memory_bytes": used.get("peak_memory_bytes") or 0,
                        "running_jobs": running.get(m.user_id, 0)})
        return out

    return _cached(tenant, "members", build)


def daily_history(tenant: Tenant, days: int = HISTORY_DAYS) -> list[dict]:
    """One row per day, oldest first, zeros included, for the charts."""
    def build():
        first = timezone.now().date() - timedelta(days=days - 1)
        sums = {r["day"]: r for r in UsageDaily.objects.filter(tenant=tenant, day__gte=first)
                .values("day").annotate(**{m: Sum(m) for m in _METRICS})}
        out = []
        for offset in range(days):
            day = first + timedelta(days=offset)
            row = sums.get(day, {})
            out.append({"day": day, "cpu_seconds": round((row.get("cpu_ms") or 0) / 1000, 1),
                        "predicted_rows": row.get("predicted_rows") or 0,
                        "api_requests": row.get("api_requests") or 0, "jobs": row.get("jobs") or 0})
        return out

    return _cached(tenant, "history", build)


def export_csv(tenant: Tenant, *, per_member: bool) -> str:
    """Daily usage as CSV (per member for admins), cells neutralised for spreadsheets."""
    rows = UsageDaily.objects.filter(tenant=tenant).select_related("user").order_by("day", "user__email")
    out = io.StringIO()
    writer = csv.writer(out)
    if per_member:
        writer.writerow(["day", "member", "cpu_seconds", "jobs", "peak_memory_bytes", "predicted_rows",
                         "api_requests"])
        for r in rows:
            writer.writerow([r.day.isoformat(), csv_safe(r.user.email if r.user else "(removed)"),
                             round(r.cpu_ms / 1000, 3), r.jobs, r.peak_memory_bytes, r.predicted_rows,
                             r.api_requests])
    else:
        writer.writerow(["day", "cpu_seconds", "jobs", "predicted_rows", "api_requests"])
        totals = rows.values("day").annotate(**{m: Sum(m) for m in _METRICS}).order_by("day")
        for r in totals:
            writer.writerow([r["day"].isoformat(), round((r["cpu_ms"] or 0) / 1000, 3), r["jobs"] or 0,
                             r["predicted_rows"] or 0, r["api_requests"] or 0])
    return out.getvalue()
