from django.urls import path

from tenants import apis
from tenants.views import accounts as account_views
from tenants.views import audit as audit_views
from tenants.views import members as member_views
from tenants.views import public as public_views
from tenants.views import security as security_views
from tenants.views import tokens as token_views
from tenants.views import usage as usage_views
from tenants.webhooks import apis as webhook_apis
from tenants.webhooks import views as webhook_views

public_patterns = [
    path("", public_views.landing, name="landing"),
    path("ops/audit/", audit_views.ops_audit, name="ops_audit"),
    path("ops/usage/", usage_views.ops_usage, name="ops_usage"),
]

page_patterns = [
    path("login/", account_views.login_view, name="login"),
    path("login/two-factor/", account_views.login_two_factor, name="login_two_factor"),
    path("login/handoff/", account_views.login_handoff, name="login_handoff"),
    path("switch/<slug:slug>/", account_views.workspace_switch, name="workspace_switch"),
    path("logout/", account_views.logout_view, name="logout"),
    path("account/password/", account_views.PasswordChangeView.as_view(), name="password_change"),
    path("account/password-reset/", account_views.PasswordResetView.as_view(), name="password_reset"),
    path("account/password-reset/sent/", account_views.PasswordResetDoneView.as_view(),
         name="password_reset_done"),
    path("account/set-password/<uidb64>/<token>/", account_views.SetPasswordView.as_view(),
         name="password_reset_confirm"),
    path("account/set-password/done/", account_views.PasswordResetCompleteView.as_view(),
         name="password_reset_complete"),
    path("members/", member_views.members, name="members"),
    path("members/limits/", usage_views.member_limits, name="member_limits"),
    path("usage/", usage_views.usage_page, name="usage"),
    path("usage/export.csv", usage_views.usage_export, name="usage_export"),
    path("members/<int:member_id>/role/", member_views.member_role, name="member_role"),
    path("members/<int:member_id>/remove/", member_views.member_remove, name="member_remove"),
    path("account/two-factor/", security_views.two_factor_setup, name="two_factor"),
    path("account/two-factor/recovery-codes/", security_views.recovery_codes, name="recovery_codes"),
    path("account/tokens/", token_views.tokens, name="tokens"),
    path("account/notifications/", security_views.notification_settings, name="notification_settings"),
    path("account/tokens/<int:token_id>/revoke/", token_views.token_revoke, name="token_revoke"),
    path("settings/security/", security_views.security_settings, name="security_settings"),
    path("audit/", audit_views.audit_log, name="audit"),
    path("audit/verify/", audit_views.audit_verify, name="audit_verify"),
    path("settings/webhooks/", webhook_views.webhooks, name="webhooks"),
    path("settings/webhooks/<int:webhook_id>/", webhook_views.webhook_detail, name="webhook_detail"),
    path("settings/webhooks/<int:webhook_id>/toggle/", webhook_views.webhook_toggle, name="webhook_toggle"),
    path("settings/webhooks/<int:webhook_id>/delete/", webhook_views.webhook_delete, name="webhook_delete"),
    path("settings/webhooks/<int:webhook_id>/test/", webhook_views.webhook_test, name="webhook_test"),
    path("settings/webhooks/deliveries/<int:delivery_id>/replay/", webhook_views.webhook_delivery_replay,
         name="webhook_delivery_replay"),
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
    path("webhooks/", webhook_apis.WebhookListApi.as_view(), name="api-webhooks"),
    path("webhooks/<int:webhook_id>/", webhook_apis.WebhookDetailApi.as_view(), name="api-webhook"),
    path("webhooks/<int:webhook_id>/deliveries/", webhook_apis.WebhookDeliveryListApi.as_view(),
         name="api-webhook-deliveries"),
    path("webhooks/<int:webhook_id>/test/", webhook_apis.WebhookTestApi.as_view(), name="api-webhook-test"),
    path("webhook-deliveries/<int:delivery_id>/replay/", webhook_apis.WebhookDeliveryReplayApi.as_view(),
         name="api-webhook-delivery-replay"),
]
