"""API tokens: one's own (every role); admins also see and revoke everyone's."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from tenants import services
from tenants.forms import TokenCreateForm
from tenants.models import Role
from tenants.selectors import api_token_list, get_api_token_for_revoke, tenant_api_token_list
from tenants.web.pages import PAGE_ERRORS, form_errors_from, member_page


@member_page()
def tokens(request):
    """Own API tokens (every role); admins also see and revoke everyone's in this workspace."""
    form = TokenCreateForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            token, secret = services.api_token_create(
                user=request.user, tenant=request.tenant, name=form.cleaned_data["name"],
                scope=form.cleaned_data["scope"], days=form.cleaned_data["expires_in_days"])
        except PAGE_ERRORS as exc:
            form_errors_from(form, exc)
        else:
            created, form = {"token": token, "secret": secret}, TokenCreateForm()
    is_admin = request.membership.role == Role.ADMIN
    response = render(request, "tenants/tokens.html", {
        "form": form, "created": created,
        "rows": api_token_list(user=request.user, tenant=request.tenant),
        "others": tenant_api_token_list(tenant=request.tenant).exclude(user=request.user)
        if is_admin else None,
    }, status=400 if request.method == "POST" and created is None else 200)
    response["Cache-Control"] = "no-store"  # the page may show a secret
    return response


@require_POST
@member_page()
def token_revoke(request, token_id: int):
    token = get_api_token_for_revoke(membership=request.membership, user=request.user,
                                     tenant=request.tenant, token_id=token_id)
    services.api_token_revoke(token=token, actor=request.user)
    messages.success(request, f"Revoked the token {token.name} ({token.prefix}…).")
    return redirect("tokens")
