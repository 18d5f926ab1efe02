from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('mlcore', '0007_job_notified_at'),
    ]

    operations = [
        migrations.AddField(
            model_name='modelversion',
            name='prepared_means',
            field=models.JSONField(blank=True, default=list),
        ),
    ]
