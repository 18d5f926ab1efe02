"""The share pages of datasets and models: one form, one grant and one revoke for both kinds."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render

from tenants.web.pages import PAGE_ERRORS, form_errors_from, page_error

from ..selectors import object_grants, share_kind
from ..services import sharing


class ShareForm(forms.Form):
    email = forms.ChoiceField(label="Person", required=False)
    everyone = forms.BooleanField(label="Everyone in the workspace", required=False)
    permission = forms.ChoiceField()

    def __init__(self, *args, people=(), choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["email"].choices = [("", "— choose a person —")] + [(p, p) for p in people]
        self.fields["permission"].choices = list(choices)


def share_page(request, obj, *, template: str, choices, url_name: str):
    """GET: who has access and the form; POST: grant, then back to this page (or the form, 400)."""
    people = sharing.grantable_emails(tenant=request.tenant, obj=obj)
    form = ShareForm(request.POST or None, people=people, choices=choices)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            sharing.object_share(tenant=request.tenant, obj=obj, permission=data["permission"],
                                 everyone=data["everyone"], email=None if data["everyone"] else data["email"])
        except PAGE_ERRORS as exc:
            form_errors_from(form, exc)
        else:
            messages.success(request, "Shared.")
            return redirect(url_name, obj.id)
    return render(request, template, {share_kind(obj).name: obj, "form": form,
                                      "grants": object_grants(obj=obj)},
                  status=400 if request.method == "POST" else 200)


def unshare(request, obj, *, url_name: str):
    """POST: remove one person's grant or the workspace share, then back to the share page."""
    everyone = request.POST.get("everyone") == "1"
    try:
        sharing.object_unshare(tenant=request.tenant, obj=obj, everyone=everyone,
                               email=None if everyone else request.POST.get("email"))
    except PAGE_ERRORS as exc:
        messages.error(request, page_error(exc)[0])
    else:
        messages.success(request, "Access removed.")
    return redirect(url_name, obj.id)
