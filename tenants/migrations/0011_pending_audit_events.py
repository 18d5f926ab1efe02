"""The durable buffer of access-log entries (tenants/auditing/audit.py, README "Security and the
audit trail").

A request writes its access entry to `tenants_pendingauditevent` (one committed INSERT, no chain
lock); a flush moves buffered entries into their chain in batches, in id order, and deletes them in
the same transaction. The database guards the buffer as it guards the chain:

- UPDATE and TRUNCATE of buffered entries are refused, whoever runs them;
- a buffered entry may be deleted only when its chain holds the same entry (same content,
  `pending_id` naming it), so deleting the buffer cannot drop an entry the chain never got;
- `tenants_auditevent.pending_id` is unique: an entry enters its chain once, however often a
  crashed flush is re-run.
"""

from django.db import migrations, models
from django_tenants.utils import get_public_schema_name

# Every column a buffered entry shares with its chain entry: all must match for it to be deleted.
_SAME = ("tenant_id", "tenant_slug", "ts", "actor_id", "actor_email", "role", "auth_method",
         "source_ip", "user_agent", "action", "object_type", "object_id", "outcome", "request_id",
         "details")


def _sql(schema: str) -> tuple[str, str]:
    # Only the public schema's name (settings, quoted here) and column names are formatted in.
    s = '"' + schema.replace('"', '""') + '"'
    same = " AND ".join(f"e.{c} IS NOT DISTINCT FROM OLD.{c}" for c in _SAME)
    forward = f"""
CREATE OR REPLACE FUNCTION {s}.portal_audit_pending_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, {s} AS $fn$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM 1 FROM {s}.tenants_auditevent e WHERE e.pending_id = OLD.id AND {same};
        IF FOUND THEN
            RETURN OLD;  -- the flush, in the transaction that appended it
        END IF;
        RAISE EXCEPTION 'a buffered audit entry leaves the buffer only into its chain: #% refused', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RAISE EXCEPTION 'buffered audit entries are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$fn$;

DROP TRIGGER IF EXISTS audit_pending_guard ON {s}.tenants_pendingauditevent;
CREATE TRIGGER audit_pending_guard
    BEFORE UPDATE OR DELETE ON {s}.tenants_pendingauditevent
    FOR EACH ROW EXECUTE FUNCTION {s}.portal_audit_pending_guard();
DROP TRIGGER IF EXISTS audit_pending_no_truncate ON {s}.tenants_pendingauditevent;
CREATE TRIGGER audit_pending_no_truncate
    BEFORE TRUNCATE ON {s}.tenants_pendingauditevent
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.portal_audit_pending_guard();
"""  # noqa: S608
    backward = f"""
DROP TRIGGER IF EXISTS audit_pending_no_truncate ON {s}.tenants_pendingauditevent;
DROP TRIGGER IF EXISTS audit_pending_guard ON {s}.tenants_pendingauditevent;
DROP FUNCTION IF EXISTS {s}.portal_audit_pending_guard();
"""
    return forward, backward


FORWARD, BACKWARD = _sql(get_public_schema_name())


class Migration(migrations.Migration):

    dependencies = [
        ("tenants", "0010_uploadlease"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="pending_id",
            field=models.BigIntegerField(blank=True, null=True, unique=True),
        ),
        migrations.CreateModel(
            name="PendingAuditEvent",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("tenant_id", models.BigIntegerField(blank=True, null=True)),
                ("tenant_slug", models.CharField(blank=True, max_length=30)),
                ("ts", models.DateTimeField()),
                ("actor_id", models.BigIntegerField(blank=True, null=True)),
                ("actor_email", models.CharField(blank=True, max_length=254)),
                ("role", models.CharField(blank=True, max_length=10)),
                ("auth_method", models.CharField(blank=True, max_length=10)),
                ("source_ip", models.GenericIPAddressField(blank=True, null=True)),
                ("user_agent", models.CharField(blank=True, max_length=300)),
                ("action", models.CharField(max_length=50)),
                ("object_type", models.CharField(blank=True, max_length=40)),
                ("object_id", models.CharField(blank=True, max_length=64)),
                ("outcome", models.CharField(max_length=7)),
                ("request_id", models.CharField(blank=True, max_length=64)),
                ("details", models.JSONField(blank=True, default=dict)),
            ],
            options={
                "indexes": [models.Index(fields=["tenant_id", "id"], name="audit_pending_chain")],
            },
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
