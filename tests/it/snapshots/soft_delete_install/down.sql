-- pgx VERSION: pattern "soft_delete_install" (down)
-- pgx provides: "soft_delete" 1
-- schema: "public"
-- param soft_delete_schema = "soft_delete"

DO $pgx$
DECLARE
    users text;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.format('%I.%I', n.nspname, c.relname), ', ') INTO users
    FROM pg_catalog.pg_trigger t
    JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE t.tgfoid = 'soft_delete.on_update()'::pg_catalog.regprocedure;
    IF users IS NOT NULL THEN
        RAISE EXCEPTION 'the soft-delete infrastructure in schema % is still used by %: revert their soft_delete migrations first', 'soft_delete', users;
    END IF;
END
$pgx$;

DROP FUNCTION soft_delete.purge(regclass, interval, integer);
DROP FUNCTION soft_delete.intercept(regclass);
DROP FUNCTION soft_delete.guard();
DROP FUNCTION soft_delete.not_orphaned(regclass, jsonb);
DROP FUNCTION soft_delete.config(regclass);
DROP FUNCTION soft_delete.on_update();
DROP FUNCTION soft_delete.actor_assignment(text[], boolean);
DROP FUNCTION soft_delete.fk_referenced(oid, text);
DROP FUNCTION soft_delete.fk_join(oid, text, text);
DROP FUNCTION soft_delete.key_join(regclass, text, text);
DROP FUNCTION soft_delete.key_columns(regclass);
DROP FUNCTION soft_delete.actor(text, regtype);
DROP FUNCTION soft_delete.trigger_args(bytea, integer);
DROP EXTENSION lo;
DROP SCHEMA soft_delete;
