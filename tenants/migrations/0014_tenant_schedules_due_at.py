"""The tenant's earliest due schedule, kept on its public row for the beat's tick.

A nullable column (safe while the old code runs: it neither reads nor writes it), filled from each
tenant schema that already has schedules; the tick's hourly full pass would also fill it."""

from django.db import migrations, models


def fill(apps, schema_editor):
    Tenant = apps.get_model("tenants", "Tenant")
    with schema_editor.connection.cursor() as cursor:
        for tenant_id, schema in Tenant.objects.exclude(schema_name="public").values_list("id", "schema_name"):
            table = f'"{schema}".mlcore_schedule'
            cursor.execute("SELECT to_regclass(%s)", [table])
            if cursor.fetchone()[0] is None:  # a schema not migrated that far yet: nothing scheduled
                continue
            cursor.execute(f"SELECT min(next_run_at) FROM {table} WHERE NOT paused")  # noqa: S608 - names from the catalog
            earliest = cursor.fetchone()[0]
            if earliest is not None:
                Tenant.objects.filter(pk=tenant_id).update(schedules_due_at=earliest)


class Migration(migrations.Migration):

    dependencies = [
        ("tenants", "0013_webhooks"),
    ]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="schedules_due_at",
            field=models.DateTimeField(blank=True, db_index=True, editable=False, null=True),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
