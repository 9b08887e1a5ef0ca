-- pgx 0.1.0: pattern "tenant" (up)
-- table: "public"."orders"
-- param column = "tenant_id"
-- param type = "uuid"
-- param setting = "app.current_tenant"
-- param add_column = true
-- param backfill = null
-- param references = null
-- param role = null
-- param unique = null
-- param partitioned = false
-- param view = null
-- param secure_views = false
-- param concurrently = false
-- param distribute = "none"
-- param lock_timeout = "5s"

SET LOCAL lock_timeout = '5s';

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
    IF col_type IS NOT NULL THEN
        RAISE EXCEPTION '% already has a column %: render this migration with --set add_column=false to use it', 'public.orders', 'tenant_id';
    END IF;
    IF col_type IS NULL AND EXISTS (SELECT FROM public.orders) THEN
        RAISE EXCEPTION '% has rows, and this migration has no tenant to give them: render it with --set backfill=<tenant id> to give them all one tenant, or add and fill the column yourself and render it with --set add_column=false', 'public.orders'
            USING HINT = pg_catalog.format('ALTER TABLE %s ADD COLUMN %I %s; UPDATE %s SET %I = ...', 'public.orders', 'tenant_id', 'uuid'::regtype, 'public.orders', 'tenant_id');
    END IF;

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
END
$pgx$;

-- The current tenant, read from the setting: NULL, matching no row, when the setting is unset,
-- reset (''), empty or not a valid tenant id; never an error. The body is parsed now,
-- not on each call, so it does not depend on the caller's search_path.
CREATE FUNCTION public.orders_current_tenant() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE
    WHEN pg_catalog.current_setting('app.current_tenant', true)
         ~ '^[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}$'
    THEN pg_catalog.current_setting('app.current_tenant', true)::uuid
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
ALTER TABLE public.orders ADD COLUMN tenant_id uuid NOT NULL DEFAULT public.orders_current_tenant();

-- An index led by the tenant column serves every query through the policy.
DO $pgx$
DECLARE
    tbl regclass := 'public.orders';
    fn regprocedure := 'public.orders_current_tenant()';
    state jsonb := pg_catalog.obj_description('public.orders_current_tenant()'::regprocedure, 'pg_proc')::jsonb;
    found regclass;
BEGIN
    SELECT i.indexrelid INTO found
    FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_catalog.pg_am am ON am.oid = ic.relam
    JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
    WHERE i.indrelid = tbl AND a.attname = 'tenant_id' AND am.amname = 'btree'
      AND i.indpred IS NULL AND i.indisvalid
    LIMIT 1;
    IF found IS NULL THEN
        CREATE INDEX orders_tenant_id_idx ON public.orders (tenant_id);
    END IF;
    state := state || pg_catalog.jsonb_build_object('index_created', found IS NULL);
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
