-- no-transaction
-- pgx 0.1.0: pattern "tenant" (down)
-- table: "public"."orders"
-- param column = "tenant_id"
-- param type = "bigint"
-- param setting = "app.current_tenant"
-- param add_column = true
-- param backfill = "7"
-- param references = {"columns":["id"],"schema":null,"table":"tenants"}
-- param role = null
-- param unique = null
-- param partitioned = false
-- param view = null
-- param secure_views = false
-- param concurrently = true
-- param distribute = "none"
-- param lock_timeout = "5s"
-- Runs outside a transaction: each statement commits on its own.

-- The up migration ran outside a transaction; this one undoes it in a single one.
BEGIN;
SET LOCAL lock_timeout = '5s';

DROP POLICY orders_tenant_access ON public.orders;
DROP POLICY orders_tenant_isolation ON public.orders;

DO $pgx$
DECLARE
    tbl regclass := 'public.orders';
    state jsonb := coalesce(pg_catalog.obj_description('public.orders_current_tenant()'::regprocedure, 'pg_proc'), '{}')::jsonb;
    rec record;
BEGIN
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

COMMIT;
