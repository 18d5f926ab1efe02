from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("mlcore", "0008_automl_search"),
        ("mlcore", "0008_explain_modelversion_prepared_means"),
        ("mlcore", "0008_monitoring_samples_reports"),
    ]

    operations = []
