-- pgx 0.1.0: pattern "pgx_install" (down)
-- pgx provides: "pgx" 1
-- schema: "public"
-- param pgx_schema = "pgx"

-- Names resolve in pg_catalog only until the end of this migration, whatever the session's
-- search_path says (which a less privileged role may have filled with look-alikes).
SELECT pg_catalog.set_config('pgx.search_path', pg_catalog.current_setting('search_path'), true),
       pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

DO $pgx$
DECLARE
    isolated text;
BEGIN
    SELECT pg_catalog.string_agg(t.relid::text, ', ' ORDER BY t.relid::text) INTO isolated FROM pgx.tenant_tables t;
    IF isolated IS NOT NULL THEN
        RAISE EXCEPTION 'tables are still tenant-isolated through schema %: %; revert their tenant migrations first', 'pgx', isolated;
    END IF;
END
$pgx$;

DROP FUNCTION pgx.tenant_new_partitions();
DROP FUNCTION pgx.tenant_doors(regclass, name, name[]);
DROP FUNCTION pgx.tenant_create_foreign_key(jsonb);
DROP FUNCTION pgx.tenant_foreign_key(oid);
DROP FUNCTION pgx.tenant_create_key(jsonb);
DROP FUNCTION pgx.tenant_key(oid);
DROP FUNCTION pgx.tenant_isolate_partition(regclass, regclass);
DROP TABLE pgx.tenant_tables;
DROP SCHEMA pgx;

-- The session's search_path again, for the runner's bookkeeping.
SELECT pg_catalog.set_config('search_path', pg_catalog.current_setting('pgx.search_path'), true);
