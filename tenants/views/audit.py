"""The audit trail: the tenant's log and verification (auditors, admins), the operators' chain view."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from tenants.accounts.access import AUDIT_ROLES
from tenants.auditing import audit
from tenants.forms import AuditFilterForm
from tenants.selectors import (
    audit_chain_overview,
    audit_event_list,
    audit_export_recent,
    audit_verification_last,
)
from tenants.web.pages import member_page

AUDIT_PAGE_SIZE = 50


@require_safe
@member_page(roles=AUDIT_ROLES)
def audit_log(request):
    from django.core.paginator import Paginator

    form = AuditFilterForm(request.GET or None)
    filters = form.filters() if form.is_bound and form.is_valid() else {}
    events = audit_event_list(tenant=request.tenant, filters=filters).order_by("-seq")
    page = Paginator(events, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "tenants/audit.html", {
        "form": form, "page": page, "query": query.urlencode(),
        "exports": audit_export_recent(tenant=request.tenant),
        "verification": audit_verification_last(tenant_id=request.tenant.id),
    }, status=400 if form.is_bound and not form.is_valid() else 200)


@require_POST
@member_page(roles=AUDIT_ROLES)
def audit_verify(request):
    from tenants.auditing.audit_chain import chains_verify

    result = chains_verify(tenant_ids=[request.tenant.id], trigger="manual",
                           actor_email=request.user.email)[0]
    audit.record("audit.verify", tenant=request.tenant, object_type="audit_chain",
                 object_id=request.tenant.id, outcome="allowed" if result.ok else "failed",
                 details={"entries": result.entries, "last_seq": result.last_seq,
                          "first_bad_seq": result.first_bad_seq, "reason": result.reason})
    if result.ok:
        messages.success(request, f"The audit trail is intact: {result.entries} entries, "
                                  f"up to #{result.last_seq}, matching {result.checkpoints} signed "
                                  "checkpoint(s).")
    else:
        messages.error(request, f"The audit trail is broken at entry #{result.first_bad_seq}: "
                                f"{result.reason}.")
    return redirect("audit")


@staff_member_required
def ops_audit(request):
    """Every chain with its head and last verification (if any ran); "verify now" runs them all."""
    from tenants.auditing.audit_chain import chains_verify

    if request.method == "POST":
        results = chains_verify(trigger="manual", actor_email=request.user.email)
        broken = [r for r in results if not r.ok]
        if broken:
            messages.error(request, "Broken: " + "; ".join(r.describe() for r in broken))
        else:
            messages.success(request, f"All {len(results)} audit chains are intact.")
        return redirect("ops_audit")
    rows = audit_chain_overview()
    from django.contrib import admin

    return render(request, "public/ops_audit.html", {
        **admin.site.each_context(request), "title": "Audit chains",
        "rows": rows, "broken": [r for r in rows if r.verification and not r.verification.ok],
    })
