-- pgx 0.1.0: pattern "tenant" (down)
-- table: "public"."orders"
-- param column = "tenant_id"
-- param type = "text"
-- param setting = "app.current_tenant"
-- param add_column = true
-- param backfill = null
-- param references = null
-- param role = null
-- param unique = ["number"]
-- param partitioned = false
-- param view = null
-- param secure_views = false
-- param concurrently = false
-- param distribute = "citus"
-- param lock_timeout = "5s"

SET LOCAL lock_timeout = '5s';

SELECT undistribute_table('public.orders');

DROP POLICY orders_tenant_access ON public.orders;
DROP POLICY orders_tenant_isolation ON public.orders;
ALTER TABLE public.orders DROP CONSTRAINT orders_tenant_id_number_key;

DO $pgx$
DECLARE
    tbl regclass := 'public.orders';
    state jsonb := coalesce(pg_catalog.obj_description('public.orders_current_tenant()'::regprocedure, 'pg_proc'), '{}')::jsonb;
    rec record;
BEGIN
    FOR rec IN SELECT * FROM pg_catalog.jsonb_to_recordset(coalesce(state -> 'rekeyed', '[]')) AS k(name text, definition text) LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I, ADD CONSTRAINT %I %s', tbl, rec.name, rec.name, rec.definition);
    END LOOP;
    -- Uniqueness across tenants comes back as it was.
    FOR rec IN SELECT * FROM pg_catalog.jsonb_to_recordset(coalesce(state -> 'replaced', '[]')) AS k(name text, "constraint" bool, definition text) LOOP
        IF rec."constraint" THEN
            EXECUTE pg_catalog.format('ALTER TABLE %s ADD CONSTRAINT %I %s', tbl, rec.name, rec.definition);
        ELSE
            EXECUTE rec.definition;
        END IF;
    END LOOP;
    IF coalesce((state ->> 'index_created')::bool, false) THEN
        DROP INDEX IF EXISTS public.orders_tenant_id_idx;
    END IF;
    EXECUTE pg_catalog.format('ALTER TABLE %s %s ROW LEVEL SECURITY, %s ROW LEVEL SECURITY', tbl,
        CASE WHEN coalesce((state ->> 'row_security')::bool, false) THEN 'ENABLE' ELSE 'DISABLE' END,
        CASE WHEN coalesce((state ->> 'force_row_security')::bool, false) THEN 'FORCE' ELSE 'NO FORCE' END);
END
$pgx$;

ALTER TABLE public.orders DROP COLUMN tenant_id;

DROP FUNCTION public.orders_current_tenant();
