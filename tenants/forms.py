from django import forms
from django.contrib.auth import authenticate
from django.contrib.auth.forms import PasswordResetForm

from .models import Role, TokenScope, User


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
