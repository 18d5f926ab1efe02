from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("mlcore", "0009_merge_search_explain_monitoring"),
        ("mlcore", "0009_versions_schedules"),
    ]

    operations = []
