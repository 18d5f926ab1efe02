"""The operators' table: every tenant's plan, limits and usage.

Above both quotas (limits) and usage (metered totals), which must not import each other's callers.
"""

from __future__ import annotations

from django.db.models import Count

from tenants.limits import usage
from tenants.limits.quotas import effective_limits
from tenants.models import JobTicket, Tenant


def operator_overview(sort: str = "slug", descending: bool = False) -> list[dict]:
    """Every tenant's plan and usage for the operator page."""
    counts = {(r["tenant_id"], r["state"]): r["n"] for r in
              JobTicket.objects.exclude(state=JobTicket.State.FINISHED).values("tenant_id", "state")
              .annotate(n=Count("id"))}
    running = {t: n for (t, state), n in counts.items() if state == JobTicket.State.RUNNING}
    queued = {t: n for (t, state), n in counts.items() if state == JobTicket.State.QUEUED}
    rows = []
    for tenant in Tenant.objects.exclude(schema_name="public").select_related("plan", "usage"):
        limits = effective_limits(tenant)
        held = getattr(tenant, "usage", None)
        month = usage.month_totals(tenant)
        rows.append({
            "slug": tenant.slug, "name": tenant.name, "plan": tenant.plan.slug if tenant.plan_id else "",
            "active": tenant.is_active, "overrides": bool(tenant.limit_overrides),
            "storage_bytes": held.storage_bytes if held else 0, "storage_limit": limits["storage_bytes"],
            "datasets": held.datasets if held else 0, "model_versions": held.model_versions if held else 0,
            "running_jobs": running.get(tenant.id, 0), "queued_jobs": queued.get(tenant.id, 0),
            "cpu_seconds": round(month["cpu_ms"] / 1000, 1), "cpu_limit": limits["cpu_seconds"],
            "predicted_rows": month["predicted_rows"], "api_requests": month["api_requests"],
        })
    key = sort if rows and sort in rows[0] else "slug"
    return sorted(rows, key=lambda r: (r[key] is None, r[key]), reverse=descending)
