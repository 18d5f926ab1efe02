from django.apps import AppConfig


class MlcoreConfig(AppConfig):
    name = "mlcore"
    verbose_name = "Machine learning"

    def ready(self):
        # Job kinds register their handlers with mlcore.jobs.handlers on import.
        from . import automl, batch_scoring, training  # noqa: F401
