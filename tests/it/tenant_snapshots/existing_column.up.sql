-- pgx 0.1.0: pattern "tenant" (up)
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
    IF col_type IS NULL THEN
        RAISE EXCEPTION '% has no column %: render this migration without --set add_column=false to add it', 'public.orders', 'tenant_id';
    ELSIF col_type <> 'uuid'::regtype THEN
        RAISE EXCEPTION '%.% is %, not %: render this migration with the --set type=... that matches it, or convert the column first',
            'public.orders', 'tenant_id', col_type, 'uuid'::regtype;
    END IF;

    -- The backfill value must be a valid tenant id.
    PERFORM '00000000-0000-0000-0000-000000000001'::uuid;

    IF pg_catalog.to_regrole('app') IS NULL THEN
        RAISE EXCEPTION 'role % does not exist', 'app';
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname = 'app' AND (r.rolsuper OR r.rolbypassrls)) THEN
        RAISE EXCEPTION 'role % bypasses row security (it is a superuser or has BYPASSRLS): the application needs a role without either', 'app';
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
    SELECT state || pg_catalog.jsonb_build_object(
               'column_not_null', a.attnotnull,
               'column_default', pg_catalog.pg_get_expr(d.adbin, d.adrelid))
    INTO state
    FROM pg_catalog.pg_attribute a
    LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = tbl AND a.attname = 'tenant_id';
    -- Privileges the role already held are kept by the down migration.
    SELECT state || pg_catalog.jsonb_build_object('privileges_held', coalesce(pg_catalog.jsonb_agg(p.privilege_type), '[]'))
    INTO state
    FROM pg_catalog.pg_class c, pg_catalog.aclexplode(coalesce(c.relacl, pg_catalog.acldefault('r', c.relowner))) p
    WHERE c.oid = tbl AND p.grantee = 'app'::regrole
      AND p.privilege_type IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE');
    EXECUTE pg_catalog.format('COMMENT ON FUNCTION %s IS %L', 'public.orders_current_tenant()'::regprocedure, state);
END
$pgx$;

-- The tenant column: NOT NULL, defaulting to the current tenant.
UPDATE public.orders SET tenant_id = '00000000-0000-0000-0000-000000000001' WHERE tenant_id IS NULL;
ALTER TABLE public.orders ALTER COLUMN tenant_id SET DEFAULT public.orders_current_tenant();
DO $pgx$
BEGIN
    ALTER TABLE public.orders ALTER COLUMN tenant_id SET NOT NULL;
EXCEPTION WHEN not_null_violation THEN
    RAISE EXCEPTION '% has rows whose % is NULL: give them a tenant, or render this migration with --set backfill=<tenant id>', 'public.orders', 'tenant_id'
        USING HINT = pg_catalog.format('UPDATE %s SET %I = ... WHERE %I IS NULL', 'public.orders', 'tenant_id', 'tenant_id');
END
$pgx$;

ALTER TABLE public.orders ADD CONSTRAINT orders_tenant_id_fkey
    FOREIGN KEY (tenant_id) REFERENCES core.tenants (id);

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
          AND i.indpred IS NULL AND a.attname IN ('email', 'Code')
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

    -- Views over the table run with the querying role's rights, so its policies apply.
    state := state || '{"secured_views": []}';
    FOR rec IN SELECT dependent.view AS name FROM (WITH RECURSIVE dependent(oid) AS (
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
    WHERE c.relkind = 'v') AS dependent WHERE NOT invoker LOOP
        EXECUTE pg_catalog.format('ALTER VIEW %s SET (security_invoker = true)', rec.name);
        state := pg_catalog.jsonb_insert(state, '{secured_views, -1}', pg_catalog.to_jsonb(rec.name), true);
    END LOOP;
    EXECUTE pg_catalog.format('COMMENT ON FUNCTION %s IS %L', fn, state);
END
$pgx$;
ALTER TABLE public.orders ADD CONSTRAINT orders_tenant_id_email_key UNIQUE (tenant_id, email);
ALTER TABLE public.orders ADD CONSTRAINT "orders_tenant_id_Code_key" UNIQUE (tenant_id, "Code");

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

-- A view of the table without the tenant column, run with the querying role's rights so the
-- policies apply. Inserting through it takes the tenant from the setting.
DO $pgx$
BEGIN
    EXECUTE pg_catalog.format('CREATE VIEW %s WITH (security_invoker = true) AS SELECT %s FROM %s',
        'public.my_orders',
        (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)
         FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = 'public.orders'::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> 'tenant_id'),
        'public.orders'::regclass);
END
$pgx$;

-- The application role; no TRUNCATE, which row security does not cover. An owner has the
-- privileges already (and granting them to it would only spell out its default ones).
DO $pgx$
BEGIN
    IF (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = 'public.orders'::regclass) <> 'app'::regrole THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON public.orders TO app;
    END IF;
END
$pgx$;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.my_orders TO app;
