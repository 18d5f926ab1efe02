"""The workspace's overview page: usage against limits and the latest datasets."""

from __future__ import annotations

from django.shortcuts import render

from tenants.limits import quotas
from tenants.web.pages import member_page

from ..selectors import dataset_list


@member_page()
def home(request):
    context = {"usage": quotas.usage_summary(tenant=request.tenant)}
    if request.membership.can_see_data:
        context["recent_datasets"] = dataset_list(membership=request.membership,
                                                  user_id=request.user.pk)[:5]
    return render(request, "mlcore/home.html", context)
