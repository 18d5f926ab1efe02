"""The workspace's overview page: usage against limits, the latest datasets, models and jobs."""

from __future__ import annotations

from django.shortcuts import render

from tenants.limits import quotas
from tenants.web.pages import member_page

from ..selectors import dataset_list, job_list, model_list

RECENT = 5


@member_page()
def home(request):
    context = {"usage": quotas.usage_summary(tenant=request.tenant)}
    who = {"membership": request.membership, "user_id": request.user.pk}
    if request.membership.can_see_data:
        context["recent_datasets"] = dataset_list(**who)[:RECENT]
        context["recent_models"] = model_list(**who).order_by("-updated_at", "-id")[:RECENT]
    if request.membership.can_write_data:  # viewers run no jobs
        context["recent_jobs"] = job_list(**who)[:RECENT]
    return render(request, "mlcore/home.html", context)
