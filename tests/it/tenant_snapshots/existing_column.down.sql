-- pgx 0.1.0: pattern "tenant" (down)
-- table: "public"."orders"
-- param column = "tenant_id"
-- param type = "uuid"
-- param setting = "app.current_tenant"
-- param add_column = false
-- param backfill = "00000000-0000-0000-0000-000000000001"
-- param references = {"columns":["id"],"schema":"core","table":"tenants"}
-- param role = "app"
-- param unique = ["email","Code"]
-- param partitioned = false
-- param view = "my_orders"
-- param secure_views = true
-- param concurrently = false
-- param distribute = "none"
-- param lock_timeout = "5s"

SET LOCAL lock_timeout = '5s';

DROP VIEW public.my_orders;

DROP POLICY orders_tenant_access ON public.orders;
DROP POLICY orders_tenant_isolation ON public.orders;
ALTER TABLE public.orders DROP CONSTRAINT orders_tenant_id_email_key;
ALTER TABLE public.orders DROP CONSTRAINT "orders_tenant_id_Code_key";
ALTER TABLE public.orders DROP CONSTRAINT orders_tenant_id_fkey;

DO $pgx$
DECLARE
    tbl regclass := 'public.orders';
    state jsonb := coalesce(pg_catalog.obj_description('public.orders_current_tenant()'::regprocedure, 'pg_proc'), '{}')::jsonb;
    rec record;
BEGIN
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
    FOR rec IN SELECT pg_catalog.jsonb_array_elements_text(coalesce(state -> 'secured_views', '[]')) AS name LOOP
        EXECUTE pg_catalog.format('ALTER VIEW %s RESET (security_invoker)', rec.name);
    END LOOP;
    -- Privileges the role held before this migration stay.
    FOR rec IN
        SELECT p.privilege FROM pg_catalog.unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p(privilege)
        WHERE NOT coalesce(state -> 'privileges_held', '[]') ? p.privilege
    LOOP
        EXECUTE pg_catalog.format('REVOKE %s ON %s FROM %I', rec.privilege, tbl, 'app');
    END LOOP;
    EXECUTE pg_catalog.format('ALTER TABLE %s %s ROW LEVEL SECURITY, %s ROW LEVEL SECURITY', tbl,
        CASE WHEN coalesce((state ->> 'row_security')::bool, false) THEN 'ENABLE' ELSE 'DISABLE' END,
        CASE WHEN coalesce((state ->> 'force_row_security')::bool, false) THEN 'FORCE' ELSE 'NO FORCE' END);
    -- The existing column gets its default and nullability back.
    IF state ? 'column_default' AND state ->> 'column_default' IS NOT NULL THEN
        EXECUTE pg_catalog.format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s', tbl, 'tenant_id', state ->> 'column_default');
    ELSE
        ALTER TABLE public.orders ALTER COLUMN tenant_id DROP DEFAULT;
    END IF;
    IF NOT coalesce((state ->> 'column_not_null')::bool, true) THEN
        ALTER TABLE public.orders ALTER COLUMN tenant_id DROP NOT NULL;
    END IF;
END
$pgx$;

DROP FUNCTION public.orders_current_tenant();
