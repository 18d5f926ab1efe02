import uuid

from django.db import migrations, models


def fill_ids(apps, schema_editor):
    PredictionOutput = apps.get_model("mlcore", "PredictionOutput")
    for output in PredictionOutput.objects.all():
        output.parquet_object_id = uuid.uuid4()
        output.save(update_fields=["parquet_object_id"])


class Migration(migrations.Migration):
    dependencies = [("mlcore", "0002_jobs_and_models")]

    operations = [
        migrations.AddField(model_name="predictionoutput", name="parquet_bytes",
                            field=models.BigIntegerField(default=0)),
        migrations.AddField(model_name="predictionoutput", name="parquet_object_id",
                            field=models.UUIDField(default=uuid.uuid4, null=True)),
        migrations.RunPython(fill_ids, migrations.RunPython.noop),
        migrations.AlterField(model_name="predictionoutput", name="parquet_object_id",
                              field=models.UUIDField(default=uuid.uuid4, unique=True)),
    ]
