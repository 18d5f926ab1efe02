"""Usage pages: what the workspace used against its limits, per member limits, the operators' view."""

from __future__ import annotations

from calendar import monthrange

from django import forms
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from tenants import services
from tenants.accounts.access import ADMIN_ROLES
from tenants.limits import quotas, usage, usage_overview
from tenants.selectors import membership_list
from tenants.web import charts
from tenants.web.pages import PAGE_ERRORS, form_errors_from, member_page

QUOTA_ROWS = [
    ("storage_bytes", "Storage", "bytes"),
    ("datasets", "Datasets", ""),
    ("model_versions", "Model versions", ""),
    ("concurrent_jobs", "Jobs running now", ""),
    ("cpu_seconds", "CPU-seconds this month", "s"),
    ("predicted_rows", "Rows predicted this month", ""),
    ("api_requests_per_minute", "API requests this minute", ""),
]
MONTHLY = {"cpu_seconds", "predicted_rows"}


def _quota_rows(summary: dict, mine: dict) -> list[dict]:
    """One bar per limit; where the viewer's own limit (set by an admin) is the tighter one, the
    bar is theirs: their own use against their own limit, the workspace's limit beside it."""
    rows = []
    for key, label, unit in QUOTA_ROWS:
        used, limit = summary["usage"][key], summary["limits"][key]
        own = mine["member_limits"].get(key)
        workspace_limit = None
        if own is not None and own <= limit:
            used, limit, workspace_limit = mine["member_usage"][key], own, limit
        rows.append({"key": key, "label": label, "unit": unit, "used": used, "limit": limit,
                     "percent": round(100 * used / limit, 1) if limit else 100.0,
                     "monthly": key in MONTHLY, "low": int(limit * 0.8), "high": int(limit * 0.95),
                     "own": workspace_limit is not None, "workspace_limit": workspace_limit})
    return rows


def _month_share() -> dict:
    today = timezone.now()
    days = monthrange(today.year, today.month)[1]
    elapsed = (today.day - 1) + today.hour / 24
    return {"day": today.day, "days": days, "percent": round(100 * elapsed / days, 1)}


@member_page()
def usage_page(request):
    tenant = request.tenant
    summary = quotas.usage_summary(tenant=tenant)
    mine = quotas.member_usage_summary(tenant=tenant, user_id=request.user.pk,
                                       limits=request.membership.limits)
    rows = _quota_rows(summary, mine)
    history = usage.daily_history(tenant)
    history_charts = [
        (title, charts.daily([(str(r["day"]), r[key]) for r in history],
                             label=f"{title} per day, last {len(history)} days"))
        for key, title in (("cpu_seconds", "CPU-seconds"), ("jobs", "Jobs"),
                           ("predicted_rows", "Rows predicted"), ("api_requests", "API requests"))
    ]
    return render(request, "tenants/usage.html", {
        "summary": summary, "quotas": rows, "month": _month_share(),
        "ask": quotas.whom_to_ask(tenant, user_id=request.user.pk) if any(r["own"] for r in rows) else "",
        "history_charts": history_charts,
        "members": usage.member_breakdown(tenant) if request.membership.is_admin else None,
    })


@member_page()
def usage_export(request):
    body = usage.export_csv(request.tenant, per_member=request.membership.is_admin)
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="usage-{request.tenant.slug}.csv"'
    return response


MEMBER_LIMIT_LABELS = {"concurrent_jobs": "Jobs at once", "cpu_seconds": "CPU-seconds per month",
                       "predicted_rows": "Predicted rows per month",
                       "api_requests_per_minute": "API requests per minute"}


class MemberLimitsForm(forms.Form):
    def __init__(self, *args, tenant_limits: dict, initial_limits: dict, **kwargs):
        super().__init__(*args, **kwargs)
        for key in quotas.MEMBER_LIMIT_FIELDS:
            self.fields[key] = forms.IntegerField(
                label=MEMBER_LIMIT_LABELS.get(key, key.replace("_", " ")), required=False, min_value=0,
                max_value=tenant_limits[key], initial=initial_limits.get(key),
                help_text=f"Workspace limit: {tenant_limits[key]:,}. Empty: no limit of their own.")


@member_page(roles=ADMIN_ROLES)
def member_limits(request):
    tenant = request.tenant
    tenant_limits = quotas.effective_limits(tenant)
    members = list(membership_list(tenant=tenant))
    forms_by_id = {m.id: MemberLimitsForm(request.POST if request.POST.get("member") == str(m.id) else None,
                                          prefix=f"m{m.id}", tenant_limits=tenant_limits,
                                          initial_limits=m.limits) for m in members}
    if request.method == "POST":
        member = next((m for m in members if str(m.id) == request.POST.get("member")), None)
        form = forms_by_id.get(member.id) if member else None
        if form is not None and form.is_valid():
            try:
                services.membership_update(membership=member, actor=request.user,
                                           limits={k: v for k, v in form.cleaned_data.items() if v is not None})
            except PAGE_ERRORS as exc:
                form_errors_from(form, exc)
            else:
                messages.success(request, f"Saved the limits of {member.user.email}.")
                return redirect("member_limits")
    return render(request, "tenants/member_limits.html", {
        "rows": [(m, forms_by_id[m.id]) for m in members], "tenant_limits": tenant_limits,
    }, status=400 if request.method == "POST" else 200)


# The operator table's columns, in order: sort key -> heading.
COLUMNS = {"slug": "Tenant", "plan": "Plan", "storage_bytes": "Storage", "datasets": "Datasets",
           "model_versions": "Model versions", "running_jobs": "Running jobs",
           "queued_jobs": "Queued jobs", "cpu_seconds": "CPU-seconds", "predicted_rows": "Predicted rows",
           "api_requests": "API requests"}
SORTABLE = tuple(COLUMNS)


@staff_member_required
def ops_usage(request):
    from django.contrib import admin

    sort = request.GET.get("sort", "slug")
    sort = sort if sort in SORTABLE else "slug"
    descending = request.GET.get("dir") == "desc"
    return render(request, "public/ops_usage.html", {
        **admin.site.each_context(request), "title": "Tenants' usage",
        "rows": usage_overview.operator_overview(sort=sort, descending=descending),
        "sort": sort, "descending": descending, "columns": COLUMNS.items(),
    })
