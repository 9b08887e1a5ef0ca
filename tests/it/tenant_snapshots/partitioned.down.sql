-- pgx 0.1.0: pattern "tenant" (down)
-- table: "public"."events"
-- param column = "tenant_id"
-- param type = "integer"
-- param setting = "app.current_tenant"
-- param add_column = true
-- param backfill = null
-- param references = null
-- param role = null
-- param unique = null
-- param partitioned = true
-- param view = null
-- param secure_views = false
-- param concurrently = false
-- param distribute = "none"
-- param lock_timeout = "5s"

SET LOCAL lock_timeout = '5s';

DROP EVENT TRIGGER public_events_isolate_new_partitions;

DROP POLICY events_tenant_access ON public.events;
DROP POLICY events_tenant_isolation ON public.events;

DO $pgx$
DECLARE
    tbl regclass := 'public.events';
    state jsonb := coalesce(pg_catalog.obj_description('public.events_current_tenant()'::regprocedure, 'pg_proc'), '{}')::jsonb;
    rec record;
BEGIN
    -- Partitions lose the policies; those that had row security before keep it.
    FOR rec IN
        SELECT t.relid::regclass AS relid, pg_catalog.format('%I.%I', n.nspname, c.relname) AS name
        FROM pg_catalog.pg_partition_tree(tbl) t
        JOIN pg_catalog.pg_class c ON c.oid = t.relid
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE t.relid <> tbl
    LOOP
        EXECUTE pg_catalog.format('DROP POLICY IF EXISTS %I ON %s', 'events_tenant_access', rec.relid);
        EXECUTE pg_catalog.format('DROP POLICY IF EXISTS %I ON %s', 'events_tenant_isolation', rec.relid);
        EXECUTE pg_catalog.format('ALTER TABLE %s %s ROW LEVEL SECURITY, %s ROW LEVEL SECURITY', rec.relid,
            CASE WHEN coalesce((state #>> ARRAY['partitions_with_row_security', rec.name, '0'])::bool, false) THEN 'ENABLE' ELSE 'DISABLE' END,
            CASE WHEN coalesce((state #>> ARRAY['partitions_with_row_security', rec.name, '1'])::bool, false) THEN 'FORCE' ELSE 'NO FORCE' END);
    END LOOP;
    IF coalesce((state ->> 'index_created')::bool, false) THEN
        DROP INDEX IF EXISTS public.events_tenant_id_idx;
    END IF;
    EXECUTE pg_catalog.format('ALTER TABLE %s %s ROW LEVEL SECURITY, %s ROW LEVEL SECURITY', tbl,
        CASE WHEN coalesce((state ->> 'row_security')::bool, false) THEN 'ENABLE' ELSE 'DISABLE' END,
        CASE WHEN coalesce((state ->> 'force_row_security')::bool, false) THEN 'FORCE' ELSE 'NO FORCE' END);
END
$pgx$;

ALTER TABLE public.events DROP COLUMN tenant_id;

DROP FUNCTION public.events_isolate_new_partitions();
DROP FUNCTION public.events_isolate_partition(regclass);

DROP FUNCTION public.events_current_tenant();
