"""Only the audit role may remove audit entries; chain heads only move forward.

Before this migration any database role could `SET portal.audit_purge = 'on'` and delete entries,
and nothing guarded the chain-head table: deleting the last entry and moving the head back left a
chain that verified. Now:

- `portal_audit` is a NOLOGIN role (cluster-wide: created only if missing). It owns one SECURITY
  DEFINER function, `portal_audit_purge(tenant_id, through_seq)`, which deletes a chain's prefix
  only if a retention checkpoint names that prefix (its last entry and hash). EXECUTE is granted to
  the role running this migration (the owner/migrations role, which operators use for
  `manage.py purge_audit`), not to PUBLIC: the application's runtime role cannot purge.
- The entries' trigger lets a DELETE through only when `current_user` is `portal_audit`, that is
  inside that function; the `portal.audit_purge` setting means nothing any more.
- The head table refuses DELETE and TRUNCATE; an UPDATE must keep the chain and raise `last_seq`,
  and (checked after the statement, so record()'s single INSERT-and-move statement passes) a head
  must name an existing entry with that hash, or be the genesis head record() creates.

A table owner can still disable triggers and a superuser can do anything: README "Database roles"
says which roles to use, and the signed checkpoints (tenants/auditing/witness.py) catch what they do.
"""

from django.db import migrations, models
from django_tenants.utils import get_public_schema_name

AUDIT_ROLE = "portal_audit"
GENESIS = "0" * 64


def _sql(schema: str) -> tuple[str, str]:
    # Only the public schema's name (settings, quoted here) and constants are formatted in.
    s = '"' + schema.replace('"', '""') + '"'
    forward = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{AUDIT_ROLE}') THEN
        BEGIN
            CREATE ROLE {AUDIT_ROLE} NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- another database of this cluster created it just now
        END;
    END IF;
    -- A non-superuser owner must be able to SET ROLE to the function's owner (ALTER ... OWNER).
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT {AUDIT_ROLE} TO %I', current_user);
    END IF;
END $$;

GRANT USAGE ON SCHEMA {s} TO {AUDIT_ROLE};
GRANT SELECT, DELETE ON {s}.tenants_auditevent TO {AUDIT_ROLE};
GRANT SELECT ON {s}.tenants_auditcheckpoint TO {AUDIT_ROLE};

CREATE OR REPLACE FUNCTION {s}.portal_audit_event_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, {s} AS $fn$
BEGIN
    IF TG_OP = 'DELETE' AND current_user = '{AUDIT_ROLE}' THEN
        RETURN OLD;  -- inside portal_audit_purge(): a checkpointed prefix
    END IF;
    RAISE EXCEPTION 'audit entries are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$fn$;

CREATE OR REPLACE FUNCTION {s}.portal_audit_purge(p_tenant_id bigint, p_through_seq bigint)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, {s} AS $fn$
DECLARE
    removed bigint;
    named boolean;
BEGIN
    -- Written twice (NULL is the platform's chain) so that both use the (tenant_id, seq) index.
    IF p_tenant_id IS NULL THEN
        SELECT EXISTS (
            SELECT 1 FROM {s}.tenants_auditcheckpoint c
            JOIN {s}.tenants_auditevent e ON e.tenant_id IS NULL AND e.seq = c.through_seq
                                         AND e.hash = c.through_hash
            WHERE c.tenant_id IS NULL AND c.through_seq = p_through_seq) INTO named;
    ELSE
        SELECT EXISTS (
            SELECT 1 FROM {s}.tenants_auditcheckpoint c
            JOIN {s}.tenants_auditevent e ON e.tenant_id = p_tenant_id AND e.seq = c.through_seq
                                         AND e.hash = c.through_hash
            WHERE c.tenant_id = p_tenant_id AND c.through_seq = p_through_seq) INTO named;
    END IF;
    IF NOT named THEN
        RAISE EXCEPTION 'no retention checkpoint names entry #% of this chain', p_through_seq
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_tenant_id IS NULL THEN
        DELETE FROM {s}.tenants_auditevent WHERE tenant_id IS NULL AND seq <= p_through_seq;
    ELSE
        DELETE FROM {s}.tenants_auditevent WHERE tenant_id = p_tenant_id AND seq <= p_through_seq;
    END IF;
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN removed;
END;
$fn$;
ALTER FUNCTION {s}.portal_audit_purge(bigint, bigint) OWNER TO {AUDIT_ROLE};
REVOKE ALL ON FUNCTION {s}.portal_audit_purge(bigint, bigint) FROM PUBLIC;
DO $$ BEGIN
    EXECUTE format('GRANT EXECUTE ON FUNCTION {s}.portal_audit_purge(bigint, bigint) TO %I', current_user);
END $$;

CREATE OR REPLACE FUNCTION {s}.portal_audit_head_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, {s} AS $fn$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND NOT (NEW.tenant_id IS DISTINCT FROM OLD.tenant_id)
            AND NEW.last_seq > OLD.last_seq THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit chain heads only move forward: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$fn$;

-- AFTER the statement's rows: record() inserts the entry and moves the head in one statement.
CREATE OR REPLACE FUNCTION {s}.portal_audit_head_on_entry() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, {s} AS $fn$
BEGIN
    IF NEW.last_seq = 0 AND NEW.last_hash = '{GENESIS}' THEN
        RETURN NULL;
    END IF;
    IF NEW.tenant_id IS NULL THEN
        PERFORM 1 FROM {s}.tenants_auditevent
            WHERE tenant_id IS NULL AND seq = NEW.last_seq AND hash = NEW.last_hash;
    ELSE
        PERFORM 1 FROM {s}.tenants_auditevent
            WHERE tenant_id = NEW.tenant_id AND seq = NEW.last_seq AND hash = NEW.last_hash;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'an audit chain head must name an existing entry: #% refused', NEW.last_seq
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END;
$fn$;

DROP TRIGGER IF EXISTS audit_head_guard ON {s}.tenants_auditchainhead;
CREATE TRIGGER audit_head_guard
    BEFORE UPDATE OR DELETE ON {s}.tenants_auditchainhead
    FOR EACH ROW EXECUTE FUNCTION {s}.portal_audit_head_guard();
DROP TRIGGER IF EXISTS audit_head_no_truncate ON {s}.tenants_auditchainhead;
CREATE TRIGGER audit_head_no_truncate
    BEFORE TRUNCATE ON {s}.tenants_auditchainhead
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.portal_audit_head_guard();
DROP TRIGGER IF EXISTS audit_head_on_entry ON {s}.tenants_auditchainhead;
CREATE TRIGGER audit_head_on_entry
    AFTER INSERT OR UPDATE ON {s}.tenants_auditchainhead
    FOR EACH ROW EXECUTE FUNCTION {s}.portal_audit_head_on_entry();
"""  # noqa: S608
    backward = f"""
DROP TRIGGER IF EXISTS audit_head_on_entry ON {s}.tenants_auditchainhead;
DROP TRIGGER IF EXISTS audit_head_no_truncate ON {s}.tenants_auditchainhead;
DROP TRIGGER IF EXISTS audit_head_guard ON {s}.tenants_auditchainhead;
DROP FUNCTION IF EXISTS {s}.portal_audit_head_on_entry();
DROP FUNCTION IF EXISTS {s}.portal_audit_head_guard();
DROP FUNCTION IF EXISTS {s}.portal_audit_purge(bigint, bigint);
CREATE OR REPLACE FUNCTION {s}.portal_audit_event_append_only() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('portal.audit_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit entries are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$fn$;
ALTER FUNCTION {s}.portal_audit_event_append_only() RESET search_path;
REVOKE ALL ON {s}.tenants_auditevent, {s}.tenants_auditcheckpoint FROM {AUDIT_ROLE};
"""
    # The role itself stays: roles are shared by every database of the cluster.
    return forward, backward


FORWARD, BACKWARD = _sql(get_public_schema_name())


class Migration(migrations.Migration):

    dependencies = [
        ("tenants", "0006_jobticket"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditverification",
            name="checkpoints",
            field=models.IntegerField(default=0),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
