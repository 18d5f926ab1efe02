"""The database itself refuses to change or remove audit entries.

UPDATE, DELETE and TRUNCATE on tenants_auditevent raise, whoever runs them. The one exception is the
retention purge (tenants.audit_chain.audit_purge), which deletes a chain's oldest entries inside a
transaction that has set `SET LOCAL portal.audit_purge = 'on'` and leaves a signed checkpoint.
Any role could set that, so 0007_audit_roles_and_witnesses replaced it with a definer function.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION portal_audit_event_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('portal.audit_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit entries are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_event_append_only
    BEFORE UPDATE OR DELETE ON tenants_auditevent
    FOR EACH ROW EXECUTE FUNCTION portal_audit_event_append_only();

CREATE TRIGGER audit_event_no_truncate
    BEFORE TRUNCATE ON tenants_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION portal_audit_event_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS audit_event_no_truncate ON tenants_auditevent;
DROP TRIGGER IF EXISTS audit_event_append_only ON tenants_auditevent;
DROP FUNCTION IF EXISTS portal_audit_event_append_only();
"""


class Migration(migrations.Migration):

    dependencies = [
        ("tenants", "0004_audit_exports_and_security"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
