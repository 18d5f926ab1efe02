import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _preload_machine_learning(**kwargs):
    """Import the ML stack once per pool process, so each forked job starts in milliseconds."""
    from mlcore.ml import onnx

    onnx.preload()
