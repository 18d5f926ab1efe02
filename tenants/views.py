"""HTML pages of the public site and of every tenant host (accounts and members)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from . import access, audit, services
from .access import ADMIN_ROLES
from .forms import LoginForm, MemberAddForm, RoleForm, TenantPasswordResetForm, WorkspaceForm
from .hosts import tenant_url
from .models import Membership, Role, Tenant
from .pages import form_errors_from, member_page
from .selectors import admin_count, get_member_for_admin, membership_list


# --- public site --------------------------------------------------------------------------------
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


# --- sign in and out ----------------------------------------------------------------------------
def login_view(request):
    if request.membership is not None:
        return redirect("home")
    initial = {"email": request.GET.get("email", "")}
    form = LoginForm(request, data=request.POST or None, initial=initial)
    if request.method == "POST" and not form.is_valid():
        audit.record("auth.login_failed", tenant=request.tenant, outcome="denied",
                     details={"email": request.POST.get("email", "")[:254], "reason": "bad credentials"})
    elif request.method == "POST":
        user = form.user
        membership = access.membership_for(user_id=user.pk, tenant=request.tenant)
        if membership is None:
            form.add_error(None, LoginForm.error_messages["no_access"])
            audit.record("auth.login_failed", tenant=request.tenant, outcome="denied",
                         actor=audit.actor_for_user(user, auth_method="session"),
                         details={"email": user.email, "reason": "not a member"})
        else:
            login(request, user)
            audit.record("auth.login", tenant=request.tenant,
                         actor=audit.actor_for_user(user, role=membership.role, auth_method="session"),
                         details={})
            next_url = request.POST.get("next") or request.GET.get("next")
            if not next_url or not url_has_allowed_host_and_scheme(
                next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
            ):
                next_url = reverse("home")
            return HttpResponseRedirect(next_url)
    status = 200 if request.method == "GET" else 400
    return render(request, "tenants/login.html", {"form": form, "next": request.GET.get("next", "")},
                  status=status)


@require_POST
def logout_view(request):
    if request.user.is_authenticated and getattr(request, "membership", None) is not None:
        audit.record("auth.logout", tenant=request.tenant)
    logout(request)
    messages.info(request, "You have been signed out.")
    return redirect("login")


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "tenants/password_change.html"
    success_url = reverse_lazy("home")

    def dispatch(self, request, *args, **kwargs):
        return member_page()(super().dispatch)(request, *args, **kwargs)

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, "Your password has been changed.")
        return response


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "tenants/password_reset.html"
    email_template_name = "tenants/email/password_reset.txt"
    subject_template_name = "tenants/email/password_reset_subject.txt"
    success_url = reverse_lazy("password_reset_done")
    form_class = TenantPasswordResetForm

    def get_form(self, form_class=None):
        form = super().get_form(form_class)
        form.tenant = self.request.tenant
        return form


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "tenants/password_reset_done.html"


class SetPasswordView(auth_views.PasswordResetConfirmView):
    """Both the "forgot password" link and the one-time invitation link land here."""

    template_name = "tenants/set_password.html"
    success_url = reverse_lazy("password_reset_complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "tenants/password_reset_complete.html"


# --- members (tenant admins) --------------------------------------------------------------------
@member_page(roles=ADMIN_ROLES)
def members(request):
    form = MemberAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            added = services.membership_add(tenant=request.tenant, email=form.cleaned_data["email"],
                                            role=form.cleaned_data["role"], actor=request.user)
        except ValidationError as exc:
            form_errors_from(form, exc)
        else:
            email = added.membership.user.email
            if added.set_password_url:
                messages.success(request, f"Invited {email}. They were e-mailed this one-time link "
                                          f"to choose a password: {added.set_password_url}")
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
        services.membership_change_role(membership=member, role=form.cleaned_data["role"],
                                        actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
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
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"Removed {member.user.email} from {request.tenant.name}.")
        return redirect("members")
    return render(request, "tenants/member_remove.html", {"member": member})


# --- error pages --------------------------------------------------------------------------------
def page_not_found(request, exception=None):
    from .middleware import not_found

    return not_found(request)


def permission_denied(request, exception=None):
    if request.path.startswith("/api/"):
        from .problems import problem_response

        return problem_response(403, str(exception) or "Forbidden.")
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


def server_error(request):
    if request.path.startswith("/api/"):
        from .problems import problem_response

        return problem_response(500, "Something went wrong on our side; it has been logged.")
    return render(request, "500.html", status=500)
