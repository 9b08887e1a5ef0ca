-- pgx 0.1.0: pattern "tenant" (up)
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
            USING HINT = pg_catalog.format('ALTER TABLE %s ADD COLUMN %I %s; UPDATE %s SET %I = ...', 'public.orders', 'tenant_id', 'text'::regtype, 'public.orders', 'tenant_id');
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
CREATE FUNCTION public.orders_current_tenant() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
RETURN NULLIF(pg_catalog.current_setting('app.current_tenant', true), '');

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
ALTER TABLE public.orders ADD COLUMN tenant_id text NOT NULL DEFAULT public.orders_current_tenant();

-- Keys, and the views reading the table.
DO $pgx$
DECLARE
    tbl regclass := 'public.orders';
    fn regprocedure := 'public.orders_current_tenant()';
    state jsonb := pg_catalog.obj_description('public.orders_current_tenant()'::regprocedure, 'pg_proc')::jsonb;
    tenant_attnum int2;
    problem text;
    rec record;
BEGIN
    SELECT a.attnum INTO tenant_attnum FROM pg_catalog.pg_attribute a WHERE a.attrelid = tbl AND a.attname = 'tenant_id';

    -- Uniqueness per tenant replaces uniqueness across tenants on the same column.
    state := state || '{"replaced": []}';
    FOR rec IN
        SELECT ic.relname AS name, i.indexrelid::regclass AS index, k.conname IS NOT NULL AS is_constraint,
               CASE WHEN k.conname IS NOT NULL THEN pg_catalog.pg_get_constraintdef(k.oid)
                    ELSE pg_catalog.pg_get_indexdef(i.indexrelid) END AS definition,
               (SELECT pg_catalog.string_agg(f.conrelid::regclass::text, ', ') FROM pg_catalog.pg_constraint f
                WHERE f.contype = 'f' AND f.conindid = i.indexrelid) AS referenced_by
        FROM pg_catalog.pg_index i
        JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_catalog.pg_attribute a ON a.attrelid = tbl AND a.attnum = i.indkey[0]
        LEFT JOIN pg_catalog.pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = tbl AND k.contype = 'u'
        WHERE i.indrelid = tbl AND i.indisunique AND NOT i.indisprimary AND i.indnkeyatts = 1
          AND i.indpred IS NULL AND a.attname IN ('number')
    LOOP
        IF rec.referenced_by IS NOT NULL THEN
            RAISE EXCEPTION 'cannot make % unique per tenant: foreign keys of % reference its unique key %; make them include the tenant column first',
                'public.orders', rec.referenced_by, rec.name;
        END IF;
        IF rec.is_constraint THEN
            EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', tbl, rec.name);
        ELSE
            EXECUTE pg_catalog.format('DROP INDEX %s', rec.index);
        END IF;
        state := pg_catalog.jsonb_insert(state, '{replaced, -1}',
            pg_catalog.jsonb_build_object('name', rec.name, 'constraint', rec.is_constraint, 'definition', rec.definition), true);
    END LOOP;

    -- Citus enforces a primary or unique key only if it holds the distribution column: put the
    -- tenant column first in every key that lacks it.
    state := state || '{"rekeyed": []}';
    FOR rec IN
        SELECT k.conname AS name, pg_catalog.pg_get_constraintdef(k.oid) AS definition,
               (SELECT pg_catalog.string_agg(f.conrelid::regclass::text, ', ') FROM pg_catalog.pg_constraint f
                WHERE f.contype = 'f' AND f.conindid = k.conindid) AS referenced_by
        FROM pg_catalog.pg_constraint k
        WHERE k.conrelid = tbl AND k.contype IN ('p', 'u') AND NOT tenant_attnum = ANY (k.conkey)
    LOOP
        IF rec.referenced_by IS NOT NULL THEN
            RAISE EXCEPTION 'cannot add the tenant column to key % of %: foreign keys of % reference it; make them include the tenant column first',
                rec.name, 'public.orders', rec.referenced_by;
        END IF;
        EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I, ADD CONSTRAINT %I %s', tbl, rec.name, rec.name,
            pg_catalog.regexp_replace(rec.definition, '^(PRIMARY KEY|UNIQUE[A-Z ]*) [(]',
                pg_catalog.chr(92) || '1 (' || pg_catalog.replace(pg_catalog.quote_ident('tenant_id'), pg_catalog.chr(92), pg_catalog.repeat(pg_catalog.chr(92), 2)) || ', '));
        state := pg_catalog.jsonb_insert(state, '{rekeyed, -1}',
            pg_catalog.jsonb_build_object('name', rec.name, 'definition', rec.definition), true);
    END LOOP;
    SELECT pg_catalog.string_agg(i.indexrelid::regclass::text, ', ') INTO problem
    FROM pg_catalog.pg_index i
    WHERE i.indrelid = tbl AND i.indisunique AND NOT tenant_attnum = ANY (i.indkey::int2[])
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint k WHERE k.conindid = i.indexrelid);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'unique index(es) % of % lack the tenant column, which Citus requires: recreate them with it first', problem, 'public.orders';
    END IF;
    EXECUTE pg_catalog.format('COMMENT ON FUNCTION %s IS %L', fn, state);
END
$pgx$;
ALTER TABLE public.orders ADD CONSTRAINT orders_tenant_id_number_key UNIQUE (tenant_id, number);

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

-- Citus: shards by tenant, before the policies so that Citus creates them on every shard.
SELECT create_distributed_table('public.orders', 'tenant_id');

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
