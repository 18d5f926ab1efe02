"""Datasets get versions: every existing dataset becomes version 1 of a series of its own."""

import uuid

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('mlcore', '0007_job_notified_at'),
    ]

    operations = [
        migrations.AddField(
            model_name='dataset',
            name='series',
            field=models.UUIDField(editable=False, null=True),
        ),
        # A unique value per existing row without a Python loop: its own object id.
        migrations.RunSQL("UPDATE mlcore_dataset SET series = object_id WHERE series IS NULL",
                          migrations.RunSQL.noop),
        migrations.AlterField(
            model_name='dataset',
            name='series',
            field=models.UUIDField(default=uuid.uuid4, editable=False),
        ),
        migrations.AddField(
            model_name='dataset',
            name='version',
            field=models.PositiveIntegerField(default=1),
        ),
        migrations.AddField(
            model_name='dataset',
            name='series_last_version',
            field=models.PositiveIntegerField(default=1),
        ),
        migrations.AddConstraint(
            model_name='dataset',
            constraint=models.UniqueConstraint(fields=('series', 'version'), name='dataset_series_version_unique'),
        ),
        migrations.AddField(
            model_name='modelversion',
            name='dataset_version',
            field=models.PositiveIntegerField(default=1),
        ),
    ]
