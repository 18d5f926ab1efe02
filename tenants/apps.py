from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants and access"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from .signals import bind_session_to_tenant

        user_logged_in.connect(bind_session_to_tenant, dispatch_uid="tenants.bind_session")
