from django.urls import path

from . import apis, views

public_patterns = [
    path("", views.landing, name="landing"),
]

page_patterns = [
    path("login/", views.login_view, name="login"),
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
    path("members/<int:member_id>/role/", views.member_role, name="member_role"),
    path("members/<int:member_id>/remove/", views.member_remove, name="member_remove"),
]

api_patterns = [
    path("me/", apis.MeApi.as_view(), name="api-me"),
    path("members/", apis.MemberListApi.as_view(), name="api-members"),
    path("members/<int:member_id>/", apis.MemberDetailApi.as_view(), name="api-member"),
    path("usage/", apis.UsageApi.as_view(), name="api-usage"),
    path("tokens/", apis.TokenListApi.as_view(), name="api-tokens"),
    path("tokens/<int:token_id>/", apis.TokenDetailApi.as_view(), name="api-token"),
]
