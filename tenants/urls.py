from django.urls import path

from . import apis, views
from .views import usage as usage_views

public_patterns = [
    path("", views.landing, name="landing"),
    path("ops/audit/", views.ops_audit, name="ops_audit"),
    path("ops/usage/", usage_views.ops_usage, name="ops_usage"),
]

page_patterns = [
    path("login/", views.login_view, name="login"),
    path("login/two-factor/", views.login_two_factor, name="login_two_factor"),
    path("logout/", views.logout_view, name="logout"),
    path("account/password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("account/password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("account/password-reset/sent/", views.PasswordResetDoneView.as_view(),
         name="password_reset_done"),
    path("account/set-password/<uidb64>/<token>/", views.SetPasswordView.as_view(),
         name="password_reset_confirm"),
    path("account/set-password/done/", views.PasswordResetCompleteView.as_view(),
         name="password_reset_complete"),
    path("members/", views.members, name="members"),
    path("members/limits/", usage_views.member_limits, name="member_limits"),
    path("usage/", usage_views.usage_page, name="usage"),
    path("usage/export.csv", usage_views.usage_export, name="usage_export"),
    path("members/<int:member_id>/role/", views.member_role, name="member_role"),
    path("members/<int:member_id>/remove/", views.member_remove, name="member_remove"),
    path("account/two-factor/", views.two_factor_setup, name="two_factor"),
    path("account/tokens/", views.tokens, name="tokens"),
    path("account/tokens/<int:token_id>/revoke/", views.token_revoke, name="token_revoke"),
    path("settings/security/", views.security_settings, name="security_settings"),
    path("audit/", views.audit_log, name="audit"),
    path("audit/verify/", views.audit_verify, name="audit_verify"),
]

api_patterns = [
    path("me/", apis.MeApi.as_view(), name="api-me"),
    path("members/", apis.MemberListApi.as_view(), name="api-members"),
    path("members/<int:member_id>/", apis.MemberDetailApi.as_view(), name="api-member"),
    path("usage/", apis.UsageApi.as_view(), name="api-usage"),
    path("tokens/", apis.TokenListApi.as_view(), name="api-tokens"),
    path("tokens/<int:token_id>/", apis.TokenDetailApi.as_view(), name="api-token"),
    path("audit-events/", apis.AuditEventListApi.as_view(), name="api-audit-events"),
    path("audit-events/export/", apis.AuditExportApi.as_view(), name="api-audit-export"),
    path("audit-events/exports/<uuid:export_id>/manifest/", apis.AuditExportManifestApi.as_view(),
         name="api-audit-manifest"),
    path("audit-events/signing-key/", apis.SigningKeyApi.as_view(), name="api-signing-key"),
]
