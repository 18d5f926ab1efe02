"""The operator console (Django admin on the public site). Writes go through the services."""

from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect, render
from django.urls import path, reverse

from tenants import services
from tenants.accounts.hosts import tenant_url
from tenants.forms import TenantCreateForm
from tenants.limits import quotas
from tenants.models import ApiToken, Membership, Plan, Tenant, User
from tenants.web.pages import PAGE_ERRORS, form_errors_from


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "storage_bytes", "concurrent_jobs", "cpu_seconds",
                    "api_requests_per_minute", "fair_share_weight")
    search_fields = ("slug", "name")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change:
            quotas.plan_changed(obj)

    def has_delete_permission(self, request, obj=None):
        return obj is None or not obj.tenants.exists()


class _ReadOnlyMembershipInline(admin.TabularInline):
    """Shown for reference; tenant admins manage members in their workspace (audited services)."""

    model = Membership
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class TenantMembershipInline(_ReadOnlyMembershipInline):
    fields = readonly_fields = ("user", "role", "limits", "created_at")


class UserMembershipInline(_ReadOnlyMembershipInline):
    fields = readonly_fields = ("tenant", "role", "created_at")


class TenantChangeForm(forms.ModelForm):
    class Meta:
        model = Tenant
        fields = ("name", "plan", "limit_overrides", "is_active")


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "plan", "schema_name", "is_active", "created_at")
    list_filter = ("plan", "is_active")
    search_fields = ("slug", "name")
    readonly_fields = ("slug", "schema_name", "created_at")
    form = TenantChangeForm
    inlines = [TenantMembershipInline]
    actions = None

    def get_queryset(self, request):
        return super().get_queryset(request).exclude(schema_name="public").select_related("plan")

    def get_fields(self, request, obj=None):
        return ("slug", "schema_name", "name", "plan", "limit_overrides", "is_active", "created_at")

    def get_urls(self):
        return [
            path("new/", self.admin_site.admin_view(self.create_view), name="tenants_tenant_create"),
            path("<int:pk>/delete-tenant/", self.admin_site.admin_view(self.destroy_view),
                 name="tenants_tenant_destroy"),
        ] + super().get_urls()

    def add_view(self, request, form_url="", extra_context=None):
        return redirect("admin:tenants_tenant_create")

    def has_delete_permission(self, request, obj=None):
        return False  # deletion goes through destroy_view (crypto-shredding + schema drop)

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        limits_changed = {"plan", "limit_overrides"} & set(form.changed_data)
        Tenant.objects.filter(pk=obj.pk).update(name=obj.name, is_active=obj.is_active)
        if limits_changed:
            quotas.tenant_limits_set(tenant=obj, plan=obj.plan, overrides=obj.limit_overrides)
        if "is_active" in form.changed_data:
            services.tenant_set_active(tenant=obj, active=obj.is_active)

    def create_view(self, request):
        form = TenantCreateForm(request.POST or None, plans=Plan.objects.all())
        if request.method == "POST" and form.is_valid():
            try:
                created = services.tenant_create(actor=request.user, **form.cleaned_data)
            except PAGE_ERRORS as exc:
                form_errors_from(form, exc)
            else:
                note = (f" One-time set-password link for {created.admin.email}: "
                        f"{created.set_password_url}") if created.set_password_url else ""
                messages.success(request, f"Created {created.tenant.name} at "
                                          f"{tenant_url(created.tenant, '/')}.{note}")
                return redirect("admin:tenants_tenant_change", created.tenant.pk)
        context = {**self.admin_site.each_context(request), "form": form,
                   "title": "Create a tenant", "opts": self.model._meta}
        return render(request, "admin/tenants/create_tenant.html", context)

    def destroy_view(self, request, pk: int):
        tenant = Tenant.objects.exclude(schema_name="public").filter(pk=pk).first()
        if tenant is None:
            return redirect("admin:tenants_tenant_changelist")
        if request.method == "POST" and request.POST.get("confirm") == tenant.slug:
            services.tenant_delete(tenant=tenant, actor=request.user)
            messages.success(request, f"Deleted {tenant.slug}: its data key, schema and files are gone.")
            return redirect("admin:tenants_tenant_changelist")
        context = {**self.admin_site.each_context(request), "tenant": tenant,
                   "title": f"Delete {tenant.name}", "opts": self.model._meta,
                   "wrong": request.method == "POST"}
        return render(request, "admin/tenants/delete_tenant.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        extra_context["destroy_url"] = reverse("admin:tenants_tenant_destroy", args=[object_id])
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ("email", "full_name", "is_staff", "is_active", "date_joined")
    list_filter = ("is_staff", "is_active")
    search_fields = ("email", "full_name")
    fields = ("email", "full_name", "is_active", "is_staff", "is_superuser", "date_joined", "last_login")
    readonly_fields = ("date_joined", "last_login")
    inlines = [UserMembershipInline]

    def save_model(self, request, obj, form, change):
        if change and "is_active" in form.changed_data and not obj.is_active:
            services.user_deactivate(user=obj, actor=request.user)
            obj.refresh_from_db()
        super().save_model(request, obj, form, change)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "user", "tenant", "scope", "expires_at", "revoked_at")
    list_filter = ("scope", "tenant")
    search_fields = ("name", "prefix", "user__email")
    readonly_fields = ("user", "tenant", "name", "prefix", "digest", "scope", "created_at",
                       "expires_at", "revoked_at", "last_used_at")

    def has_add_permission(self, request):
        return False
