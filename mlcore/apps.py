from django.apps import AppConfig


class MlcoreConfig(AppConfig):
    name = "mlcore"
    verbose_name = "Machine learning"

    def ready(self):
        # Job kinds register their handlers with mlcore.jobs.handlers on import.
        from tenants.services import register_member_removed_hook

        from . import automl, batch_scoring, training  # noqa: F401
        from .services.schedules import schedules_pause_for_member

        register_member_removed_hook(schedules_pause_for_member)
