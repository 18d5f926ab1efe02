"""Members of the workspace (tenant admins): add or invite, change role, remove."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from tenants import services
from tenants.accounts.access import ADMIN_ROLES
from tenants.forms import MemberAddForm, RoleForm
from tenants.models import Membership, Role
from tenants.selectors import admin_count, get_member_for_admin, membership_list
from tenants.web.pages import PAGE_ERRORS, form_errors_from, member_page, page_error


@member_page(roles=ADMIN_ROLES)
def members(request):
    form = MemberAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            added = services.membership_add(tenant=request.tenant, email=form.cleaned_data["email"],
                                            role=form.cleaned_data["role"], actor=request.user)
        except PAGE_ERRORS as exc:
            form_errors_from(form, exc)
        else:
            email = added.membership.user.email
            if added.set_password_url:
                # The link is the invitee's credential: it goes to their mailbox only, never to
                # the admin's screen (who could otherwise choose the password in their place).
                messages.success(request, f"Invited {email}: they were e-mailed a one-time link to "
                                          f"choose a password.")
            else:
                messages.success(request, f"Added {email} as {added.membership.role}.")
            return redirect("members")
    rows = membership_list(tenant=request.tenant)
    return render(request, "tenants/members.html", {
        "form": form, "rows": rows, "roles": Role.choices, "admins": admin_count(tenant=request.tenant),
    }, status=400 if request.method == "POST" else 200)


@require_POST
@member_page(roles=ADMIN_ROLES)
def member_role(request, member_id: int):
    member = get_member_for_admin(actor=request.membership, tenant=request.tenant, member_id=member_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the listed roles.")
        return redirect("members")
    try:
        services.membership_update(membership=member, role=form.cleaned_data["role"], actor=request.user)
    except PAGE_ERRORS as exc:
        messages.error(request, page_error(exc)[0])
    else:
        messages.success(request, f"{member.user.email} is now {member.role}.")
    return redirect("members")


@member_page(roles=ADMIN_ROLES)
def member_remove(request, member_id: int):
    member: Membership = get_member_for_admin(actor=request.membership, tenant=request.tenant,
                                              member_id=member_id)
    if request.method == "POST":
        try:
            services.membership_remove(membership=member, actor=request.user)
        except PAGE_ERRORS as exc:
            messages.error(request, page_error(exc)[0])
        else:
            messages.success(request, f"Removed {member.user.email} from {request.tenant.name}.")
        return redirect("members")
    return render(request, "tenants/member_remove.html", {"member": member})
