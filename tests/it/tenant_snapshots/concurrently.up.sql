-- no-transaction
-- pgx 0.1.0: pattern "tenant" (up)
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

SET lock_timeout = '5s';

-- Checks before anything changes; each failure says how to proceed.
DO $pgx$
DECLARE
    tbl regclass := 'public.orders';
    kind "char";
    col_type regtype;
    problem text;
BEGIN
    SELECT c.relkind INTO kind FROM pg_catalog.pg_class c WHERE c.oid = tbl;
    IF kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', 'public.orders';
    ELSIF kind = 'p' THEN
        RAISE EXCEPTION '% is partitioned: render this migration with --set partitioned=true, so that its partitions are isolated too', 'public.orders';
    END IF;

    -- Fails on a name PostgreSQL would not accept as a custom setting. Local to this statement.
    PERFORM pg_catalog.set_config('app.current_tenant', '', true);

    SELECT a.atttypid INTO col_type FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = tbl AND a.attname = 'tenant_id' AND a.attnum > 0 AND NOT a.attisdropped;
    -- A column of the right type is what an interrupted run of this migration added.
    IF col_type IS NOT NULL AND col_type <> 'int8'::regtype THEN
        RAISE EXCEPTION '% already has a column %: render this migration with --set add_column=false to use it', 'public.orders', 'tenant_id';
    END IF;

    -- The backfill value must be a valid tenant id.
    PERFORM '7'::int8;

    -- A view runs with its owner's rights unless it is security_invoker: owned by a superuser
    -- or a BYPASSRLS role, it would show every tenant's rows.
    SELECT pg_catalog.string_agg(dependent.view, ', ' ORDER BY dependent.view) INTO problem
    FROM (WITH RECURSIVE dependent(oid) AS (
        -- Views reading the table, and views reading those, through their rewrite rules.
        SELECT r.ev_class FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
        WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
          AND d.refobjid = tbl AND r.ev_class <> tbl
        UNION
        SELECT r.ev_class FROM dependent
        JOIN pg_catalog.pg_depend d ON d.refobjid = dependent.oid
        JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
        WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
          AND r.ev_class <> dependent.oid
    )
    SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS view,
           coalesce((SELECT o.option_value::bool FROM pg_catalog.pg_options_to_table(c.reloptions) o
                     WHERE o.option_name = 'security_invoker'), false) AS invoker
    FROM dependent
    JOIN pg_catalog.pg_class c ON c.oid = dependent.oid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'v') AS dependent
    WHERE NOT invoker;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'view(s) % read % with their owner''s rights: recreate them WITH (security_invoker = true), or render with --set secure_views=true to switch them', problem, 'public.orders';
    END IF;

    -- With an index led by the tenant column in place, nothing needs building concurrently.
    SELECT pg_catalog.string_agg(i.indexrelid::regclass::text, ', ') INTO problem
    FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_catalog.pg_am am ON am.oid = ic.relam
    JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
    WHERE i.indrelid = tbl AND a.attname = 'tenant_id' AND am.amname = 'btree'
      AND i.indpred IS NULL AND i.indisvalid AND ic.relname <> 'orders_tenant_id_idx';
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION '% already has an index led by % (%): render this migration without --set concurrently=true', 'public.orders', 'tenant_id', problem;
    END IF;
END
$pgx$;

-- Steps that must not block writes on a live table. Each one commits on its own and can run
-- again after a failure.
ALTER TABLE public.orders ADD COLUMN IF NOT EXISTS tenant_id int8 NOT NULL DEFAULT '7'::int8;

DO $pgx$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint k WHERE k.conrelid = 'public.orders'::regclass AND k.conname = 'orders_tenant_id_fkey') THEN
        ALTER TABLE public.orders ADD CONSTRAINT orders_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id) NOT VALID;
    END IF;
END
$pgx$;

ALTER TABLE public.orders VALIDATE CONSTRAINT orders_tenant_id_fkey;

-- An index build interrupted earlier leaves an invalid index behind; build it again.
DO $pgx$
DECLARE
    leftover regclass;
BEGIN
    FOR leftover IN
        SELECT i.indexrelid FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
        WHERE i.indrelid = 'public.orders'::regclass AND NOT i.indisvalid
          AND ic.relname IN ('orders_tenant_id_idx')
    LOOP
        EXECUTE pg_catalog.format('DROP INDEX %s', leftover);
    END LOOP;
END
$pgx$;

CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_tenant_id_idx ON public.orders (tenant_id);

-- Everything else in one transaction: isolation is switched on completely or not at all.
BEGIN;

-- The current tenant, read from the setting: NULL, matching no row, when the setting is unset,
-- reset (''), empty or not a valid tenant id; never an error. The body is parsed now,
-- not on each call, so it does not depend on the caller's search_path.
CREATE FUNCTION public.orders_current_tenant() RETURNS int8
    LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE
    WHEN pg_catalog.current_setting('app.current_tenant', true) ~ '^[-+]?[0-9]{1,19}$'
    THEN CASE
        WHEN pg_catalog.current_setting('app.current_tenant', true)::numeric BETWEEN -9223372036854775808 AND 9223372036854775807
        THEN pg_catalog.current_setting('app.current_tenant', true)::int8
    END
END;

-- What is there before this migration changes it, for the down migration.
DO $pgx$
DECLARE
    tbl regclass := 'public.orders';
    state jsonb;
BEGIN
    SELECT pg_catalog.jsonb_build_object('row_security', c.relrowsecurity, 'force_row_security', c.relforcerowsecurity)
    INTO state FROM pg_catalog.pg_class c WHERE c.oid = tbl;
    EXECUTE pg_catalog.format('COMMENT ON FUNCTION %s IS %L', 'public.orders_current_tenant()'::regprocedure, state);
END
$pgx$;

-- The tenant column: NOT NULL, defaulting to the current tenant.
ALTER TABLE public.orders ALTER COLUMN tenant_id SET DEFAULT public.orders_current_tenant();
-- No scan under this lock: the column is NOT NULL already, or the CHECK validated above proves it.
ALTER TABLE public.orders ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE public.orders DROP CONSTRAINT IF EXISTS orders_tenant_id_not_null;

-- An index led by the tenant column serves every query through the policy.
DO $pgx$
DECLARE
    tbl regclass := 'public.orders';
    fn regprocedure := 'public.orders_current_tenant()';
    state jsonb := pg_catalog.obj_description('public.orders_current_tenant()'::regprocedure, 'pg_proc')::jsonb;
BEGIN
    -- Built concurrently above by this migration.
    state := state || '{"index_created": true}';
    EXECUTE pg_catalog.format('COMMENT ON FUNCTION %s IS %L', fn, state);
END
$pgx$;

-- Row security, forced so that the table's owner is confined as well. Isolation is
-- RESTRICTIVE: no permissive policy added later can widen it. The second policy grants what
-- isolation allows; to narrow further, add RESTRICTIVE policies (or replace it).
ALTER TABLE public.orders ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY orders_tenant_isolation ON public.orders AS RESTRICTIVE FOR ALL TO PUBLIC
    USING (tenant_id = (SELECT public.orders_current_tenant()))
    WITH CHECK (tenant_id = (SELECT public.orders_current_tenant()));

CREATE POLICY orders_tenant_access ON public.orders AS PERMISSIVE FOR ALL TO PUBLIC
    USING (true)
    WITH CHECK (true);

COMMIT;

RESET lock_timeout;
