"""The operator console (Django admin on the public site). Writes go through the services."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import NON_FIELD_ERRORS
from django.shortcuts import redirect, render
from django.urls import path, reverse

from tenants import services
from tenants.accounts.hosts import tenant_url
from tenants.forms import TenantCreateForm
from tenants.limits import quotas
from tenants.models import (
    OVERRIDE_FIELDS,
    ApiToken,
    Membership,
    Plan,
    Tenant,
    User,
    limit_bounds,
    limit_overrides_errors,
)
from tenants.web.pages import PAGE_ERRORS, form_errors_from

MB = 1024 * 1024
# How the console shows each limit: label, unit, and how many stored units make one shown unit.
LIMIT_DISPLAY = {
    "storage_bytes": ("Storage", "MB", MB),
    "rows_per_dataset": ("Rows per dataset", "rows", 1),
    "columns_per_dataset": ("Columns per dataset", "columns", 1),
    "datasets": ("Datasets", "datasets", 1),
    "model_versions": ("Model versions", "versions", 1),
    "concurrent_jobs": ("Jobs at once", "jobs", 1),
    "cpu_seconds": ("CPU time per month", "CPU-seconds", 1),
    "memory_per_job_bytes": ("Memory per job", "MB", MB),
    "wall_seconds_per_job": ("Wall-clock time per job", "seconds", 1),
    "predicted_rows": ("Rows predicted per month", "rows", 1),
    "api_requests_per_minute": ("API requests per minute", "requests", 1),
    "fair_share_weight": ("Fair-share weight", "shares", 1),
}


def shown_limit(key: str, value: int | None) -> str:
    """A stored limit as people read it: 20.0 GB, 360,000 CPU-seconds."""
    if value is None:
        return "—"
    if LIMIT_DISPLAY[key][1] == "MB":
        return quotas.human_bytes(value)
    return f"{value:,} {LIMIT_DISPLAY[key][1]}"


def limit_field(key: str, *, required: bool, help_text: str = "") -> forms.IntegerField:
    """One limit in its unit, bounded like the model (tenants.models.limit_bounds)."""
    label, unit, scale = LIMIT_DISPLAY[key]
    low, high = limit_bounds(key)
    return forms.IntegerField(label=f"{label} ({unit})", required=required, help_text=help_text,
                              min_value=-(-low // scale), max_value=high // scale)


class _LimitsInUnits:
    """A form mixin: one field per limit in its unit (MB, CPU-seconds...), converted to the stored
    unit on clean; an unchanged MB value keeps the exact stored bytes."""

    def _stored(self, key: str, shown: int | None, before: int | None) -> int | None:
        scale = LIMIT_DISPLAY[key][2]
        if shown is None:
            return None
        if before is not None and shown == round(before / scale):
            return before
        return shown * scale

    @staticmethod
    def _shown(key: str, stored) -> int | None:
        # A stored value that is not a whole number (written around the services) shows blank,
        # so the page still opens and saving it drops the bad value.
        if isinstance(stored, bool) or not isinstance(stored, int):
            return None
        return round(stored / LIMIT_DISPLAY[key][2])


def _limit_fields(*, required: bool) -> dict[str, forms.IntegerField]:
    # Declared on the form class (not added in __init__), so the admin accepts them in fieldsets.
    return {key: limit_field(key, required=required) for key in OVERRIDE_FIELDS}


class _PlanForm(_LimitsInUnits, forms.ModelForm):
    class Meta:
        model = Plan
        fields = ("slug", "name", "description", *OVERRIDE_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for key in OVERRIDE_FIELDS:
            self.initial[key] = self._shown(key, getattr(self.instance, key, None))

    def clean(self):
        cleaned = super().clean()
        for key in OVERRIDE_FIELDS:  # back to bytes before the model's own validation
            if cleaned.get(key) is not None:
                cleaned[key] = self._stored(key, cleaned[key], getattr(self.instance, key))
        return cleaned


PlanForm = type("PlanForm", (_PlanForm,), _limit_fields(required=True))


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    form = PlanForm
    list_display = ("name", "slug", "storage", "concurrent_jobs", "cpu_time", "requests_per_minute",
                    "fair_share_weight")
    search_fields = ("slug", "name")

    def get_fields(self, request, obj=None):
        return ("slug", "name", "description", *OVERRIDE_FIELDS)

    @admin.display(description="Storage", ordering="storage_bytes")
    def storage(self, plan):
        return shown_limit("storage_bytes", plan.storage_bytes)

    @admin.display(description="CPU time per month", ordering="cpu_seconds")
    def cpu_time(self, plan):
        return shown_limit("cpu_seconds", plan.cpu_seconds)

    @admin.display(description="API requests per minute", ordering="api_requests_per_minute")
    def requests_per_minute(self, plan):
        return f"{plan.api_requests_per_minute:,}"

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


class _TenantChangeForm(_LimitsInUnits, forms.ModelForm):
    """Plan, and one optional field per limit (blank: the plan's value) instead of raw JSON."""

    class Meta:
        model = Tenant
        fields = ("name", "plan", "is_active")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        overrides = self.instance.limit_overrides or {}
        plan = self.instance.plan if self.instance.plan_id else None
        for key in OVERRIDE_FIELDS:
            inherited = getattr(plan, key, None) if plan else None
            self.fields[key].help_text = f"Blank: the plan's {shown_limit(key, inherited)}."
            self.initial[key] = self._shown(key, overrides.get(key))

    def clean(self):
        cleaned = super().clean()
        before = self.instance.limit_overrides or {}
        overrides = {}
        for key in OVERRIDE_FIELDS:
            stored = self._stored(key, cleaned.get(key), before.get(key))
            if stored is not None:
                overrides[key] = stored
        # The model's own check (the same one tenant_limits_set applies), shown on the fields.
        errors = limit_overrides_errors(overrides)
        for key, message in errors.items():
            self.add_error(key if key in self.fields else None, message)
        self.instance.limit_overrides = {k: v for k, v in overrides.items() if k not in errors}
        self.limit_overrides = overrides
        self.limits_changed = overrides != before
        return cleaned

    def _update_errors(self, errors):
        # Never a 500 for a model-level complaint about the overrides: the form has no
        # limit_overrides field to attach it to, so it is shown above the form.
        if hasattr(errors, "error_dict") and "limit_overrides" in errors.error_dict:
            messages_ = errors.error_dict.pop("limit_overrides")
            errors.error_dict.setdefault(NON_FIELD_ERRORS, []).extend(messages_)
        super()._update_errors(errors)


TenantChangeForm = type("TenantChangeForm", (_TenantChangeForm,), _limit_fields(required=False))


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

    def get_fieldsets(self, request, obj=None):
        return [
            (None, {"fields": ("slug", "schema_name", "name", "plan", "is_active", "created_at")}),
            ("Limits for this tenant only", {
                "fields": OVERRIDE_FIELDS,
                "description": "Leave a field blank to use the plan's value. Sizes are in MB.",
            }),
        ]

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
        Tenant.objects.filter(pk=obj.pk).update(name=obj.name, is_active=obj.is_active)
        if "plan" in form.changed_data or form.limits_changed:
            # The stored row, so the audit entry's "from" is what was in force before this edit.
            stored = Tenant.objects.select_related("plan").get(pk=obj.pk)
            quotas.tenant_limits_set(tenant=stored, plan=obj.plan, overrides=form.limit_overrides)
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
                # The link is the new admin's credential: e-mailed to them only, never shown here.
                note = (f" {created.admin.email} was e-mailed a one-time link to choose a password."
                        if created.set_password_url else "")
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
