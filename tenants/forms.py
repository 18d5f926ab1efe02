import datetime

from django import forms
from django.contrib.auth import authenticate
from django.contrib.auth.forms import PasswordResetForm

from tenants.models import Role, TokenScope, User
from tenants.webhooks import events as webhook_events


class LoginForm(forms.Form):
    email = forms.EmailField(label="E-mail", widget=forms.EmailInput(attrs={"autocomplete": "username",
                                                                             "autofocus": True}))
    password = forms.CharField(label="Password", strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))

    error_messages = {
        "invalid_login": "That e-mail and password do not match an account.",
        "no_access": "This account has no access to this workspace.",
        "inactive": "This account is disabled.",
    }

    def __init__(self, request=None, *args, **kwargs):
        self.request = request
        self.user = None
        super().__init__(*args, **kwargs)

    def clean(self):
        email = self.cleaned_data.get("email")
        password = self.cleaned_data.get("password")
        if email and password:
            self.user = authenticate(self.request, username=email, password=password)
            if self.user is None:
                raise forms.ValidationError(self.error_messages["invalid_login"], code="invalid_login")
        return self.cleaned_data


class WorkspaceForm(forms.Form):
    slug = forms.SlugField(label="Workspace", max_length=30,
                           help_text="The short name in your workspace address, e.g. acme")


class MemberAddForm(forms.Form):
    email = forms.EmailField(label="E-mail")
    role = forms.ChoiceField(label="Role", choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=Role.choices)


class TokenCreateForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100)
    scope = forms.ChoiceField(label="Scope", choices=TokenScope.choices, initial=TokenScope.READ)
    expires_in_days = forms.IntegerField(label="Expires in (days)", min_value=1, max_value=365,
                                         initial=90)


class TenantCreateForm(forms.Form):
    slug = forms.CharField(label="Slug", max_length=30,
                           help_text="Lower-case letters, digits and hyphens; 3-30 characters.")
    name = forms.CharField(label="Name", max_length=100)
    admin_email = forms.EmailField(label="First admin's e-mail")
    plan = forms.ChoiceField(label="Plan", choices=())

    def __init__(self, *args, plans=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].choices = [(p.slug, p.name) for p in plans]


class TenantPasswordResetForm(PasswordResetForm):
    """Reset links go only to members of the workspace the request came to.

    Invited users who never chose a password (unusable password) may use it too, so an expired
    invitation is never a dead end.
    """

    tenant = None

    def get_users(self, email):
        users = User.objects.filter(email__iexact=email, is_active=True,
                                    memberships__tenant=self.tenant)
        return (u for u in users if _email_matches(u.email, email))


def _email_matches(a: str, b: str) -> bool:
    from django.contrib.auth.forms import _unicode_ci_compare

    return _unicode_ci_compare(a, b)


def lockout_username(request, credentials: dict | None) -> str:
    """The lockout key's user part (AXES_USERNAME_CALLABLE): the e-mail as typed, case-folded,
    so ALICE@acme.test and alice@acme.test count as the same account."""
    source = credentials if credentials else getattr(request, "POST", {})
    value = source.get("username") or source.get("email") or ""
    return str(value).strip().lower()[:254]


class TwoFactorCodeForm(forms.Form):
    code = forms.CharField(
        label="Authentication code", max_length=8, min_length=6, strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric",
                                      "pattern": "[0-9]*", "autofocus": True}),
        help_text="The 6-digit code your authenticator app shows now.",
    )

    def clean_code(self):
        code = self.cleaned_data["code"].replace(" ", "")
        if not code.isdigit():
            raise forms.ValidationError("Enter the digits your authenticator app shows.")
        return code


class SignInCodeForm(forms.Form):
    """The second sign-in step: a code from the app, or one of the user's recovery codes."""

    code = forms.CharField(
        label="Authentication code", max_length=24, min_length=6, strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True,
                                      "autocapitalize": "off", "spellcheck": "false"}),
        help_text="The 6-digit code your authenticator app shows now, or one of your recovery codes "
                  "if you no longer have the app.",
    )

    def clean_code(self):
        from tenants.accounts import two_factor

        code = self.cleaned_data["code"].replace(" ", "")
        if code.isdigit() or two_factor.looks_like_recovery_code(code):
            return code
        raise forms.ValidationError("Enter the 6 digits your app shows, or a recovery code such as "
                                    "abcd-efgh-jkmn-pqrs.")


class SecuritySettingsForm(forms.Form):
    require_admin_2fa = forms.BooleanField(
        label="Require two-factor sign-in for admins", required=False,
        help_text="Admins without an authenticator app are sent to set one up before anything else.",
    )


class NotificationSettingsForm(forms.Form):
    notify_job_emails = forms.BooleanField(
        label="E-mail me when a long job of mine ends", required=False,
        help_text="For training and batch prediction jobs that ran longer than a minute: one e-mail "
                  "when the job finishes or fails, with a link to it.",
    )


class AuditFilterForm(forms.Form):
    """Filters of the audit page and of GET /api/v1/audit-events/ (and its export)."""

    # Visible labels, no placeholders: a placeholder vanishes as soon as one types.
    since = forms.DateTimeField(label="From (UTC)", required=False, widget=forms.DateTimeInput(
        attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(label="Until (UTC)", required=False, widget=forms.DateTimeInput(
        attrs={"type": "datetime-local"}))
    actor = forms.CharField(label="Actor (e-mail or id)", max_length=254, required=False)
    action = forms.CharField(label="Action", max_length=50, required=False,
                             help_text="e.g. auth.login, or auth.* for a family")
    object_type = forms.CharField(label="Object type", max_length=40, required=False)
    object_id = forms.CharField(label="Object id", max_length=64, required=False)
    outcome = forms.ChoiceField(label="Outcome", required=False,
                                choices=[("", "any"), ("allowed", "allowed"), ("denied", "denied"),
                                         ("failed", "failed")])

    def _utc(self, name: str):
        # PostgreSQL refuses offsets beyond ±15:59 ("…-23:32"): compare in UTC, as the entries are.
        value = self.cleaned_data.get(name)
        if value is None:
            return None
        try:
            return value.astimezone(datetime.UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError("This instant is out of range.")

    def clean_since(self):
        return self._utc("since")

    def clean_until(self):
        return self._utc("until")

    def filters(self) -> dict:
        """The cleaned, non-empty filters (dates as aware datetimes)."""
        return {k: v for k, v in self.cleaned_data.items() if v not in (None, "")}

    def filters_json(self) -> dict:
        """The same filters as stored in an export manifest (dates in ISO 8601 UTC)."""
        from tenants.auditing.audit import format_ts

        return {k: format_ts(v) if k in ("since", "until") else v for k, v in self.filters().items()}


class WebhookEndpointForm(forms.Form):
    url = forms.CharField(label="URL", max_length=2000,
                          help_text="https:// on a public address; it gets a signed POST per event.")
    description = forms.CharField(label="Description", max_length=200, required=False)
    events = forms.MultipleChoiceField(label="Events", widget=forms.CheckboxSelectMultiple,
                                       choices=list(webhook_events.EVENT_TYPES.items()))
