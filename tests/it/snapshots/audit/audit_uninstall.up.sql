-- pgx 0.1.0: pattern "audit_uninstall" (up)
-- schema: "public"
-- param audit_schema = "audit"
-- param actor_setting = "app.user_id"
-- param actor_type = "uuid"
-- param lock_timeout = "100ms"

SET LOCAL lock_timeout = '100ms';

-- Removes the audit infrastructure in schema audit, and with it ALL recorded audit
-- history. Refuses while any table is still audited: revert those tables' audit migrations
-- first.
DO $pgx$
DECLARE
    v_tables text;
BEGIN
    IF pg_catalog.to_regprocedure('audit.capture()') IS NULL THEN
        RAISE EXCEPTION 'audit: there is no audit infrastructure in schema %', 'audit';
    END IF;
    SELECT pg_catalog.string_agg(DISTINCT g.tgrelid::regclass::text, ', ') INTO v_tables
      FROM pg_catalog.pg_trigger AS g
     WHERE g.tgfoid OPERATOR(pg_catalog.=) 'audit.capture()'::pg_catalog.regprocedure;
    IF v_tables IS NOT NULL THEN
        RAISE EXCEPTION 'audit: cannot remove the audit infrastructure in schema %: still audited: %', 'audit', v_tables
            USING HINT = 'revert the audit migrations of these tables first';
    END IF;
END
$pgx$;

DROP EVENT TRIGGER IF EXISTS audit_partitions;
DROP EVENT TRIGGER IF EXISTS audit_dropped_tables;

DROP FUNCTION audit.history(regclass, jsonb);
DROP FUNCTION audit.history(text, text, jsonb);
DROP FUNCTION audit.on_drop();
DROP FUNCTION audit.on_ddl();
DROP FUNCTION audit.unregister_table(regclass);
DROP FUNCTION audit.register_table(regclass, text[], text[], boolean, integer);
DROP FUNCTION audit.attach_partitions(regclass);
DROP FUNCTION audit.capture();
DROP FUNCTION audit.row_json(pg_catalog.jsonb, integer);
DROP FUNCTION audit.row_expr(oid, text, text[], integer);
DROP FUNCTION audit.unsafe_type(oid);

-- Dropping the log takes its history with it; the superuser-only append-only rule does not
-- apply to DROP, which only the owner can do.
DROP TABLE audit.audited_table;
DROP TABLE audit.log;
DROP FUNCTION audit.forbid_change();
DROP FUNCTION audit.settings();

-- RESTRICT: anything else someone put in the schema stops the migration instead of going too.
DROP SCHEMA audit RESTRICT;
