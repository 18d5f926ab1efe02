"""The public site's landing page: find your workspace."""

from __future__ import annotations

from django.http import HttpResponseRedirect
from django.shortcuts import render

from tenants.accounts.hosts import tenant_url
from tenants.forms import WorkspaceForm
from tenants.models import Tenant


def landing(request):
    form = WorkspaceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        slug = form.cleaned_data["slug"].lower()
        tenant = Tenant.objects.filter(slug=slug, is_active=True).exclude(schema_name="public").first()
        if tenant is not None:
            return HttpResponseRedirect(tenant_url(tenant, "/login/"))
        form.add_error("slug", f"There is no workspace called '{slug}'. Check the spelling or ask "
                               "your administrator for your workspace address.")
    return render(request, "public/landing.html", {"form": form})
