from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants and access"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in, user_login_failed

        from tenants.auditing import online as audit_online
        from tenants.limits import metering
        from tenants.signals import (
            audit_operator_login,
            audit_operator_login_failed,
            bind_session_to_tenant,
        )

        audit_online.register_pre_export_hook(metering.settle_before_export)
        user_logged_in.connect(bind_session_to_tenant, dispatch_uid="tenants.bind_session")
        user_logged_in.connect(audit_operator_login, dispatch_uid="tenants.audit_operator_login")
        user_login_failed.connect(audit_operator_login_failed,
                                  dispatch_uid="tenants.audit_operator_login_failed")
