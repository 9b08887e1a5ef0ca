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
-- param global_unique = ["orders_pkey"]
-- param composite_keys = true
-- param strict = true
-- param partitioned = false
-- param view = "my_orders"
-- param secure_views = true
-- param concurrently = false
-- param distribute = "none"
-- param pgx_schema = "pgx"
-- param lock_timeout = "100ms"

SET LOCAL lock_timeout = '100ms';
-- Names resolve in pg_catalog only until the end of this migration, whatever the session's
-- search_path says (which a less privileged role may have filled with look-alikes).
SELECT pg_catalog.set_config('pgx.search_path', pg_catalog.current_setting('search_path'), true),
       pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

DO $pgx$
DECLARE
    owner_oid oid;
    others text;
BEGIN
    SELECT n.nspowner INTO owner_oid FROM pg_catalog.pg_namespace n WHERE n.nspname = 'pgx';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'schema % does not exist: %', 'pgx', 'the tenant pattern keeps its registry there: apply the pgx_install migration first (pgx new pgx_install)';
    END IF;
    -- Superusers can do anything anyway; any other owner could replace what pgx puts there.
    IF owner_oid <> pg_catalog.to_regrole(CURRENT_USER)
       AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = owner_oid) THEN
        RAISE EXCEPTION 'schema % belongs to role %, not to %: pgx keeps objects there that run with elevated rights, and the owner of a schema can drop and replace what is in it',
            'pgx', pg_catalog.pg_get_userbyid(owner_oid), CURRENT_USER
            USING HINT = pg_catalog.format('ALTER SCHEMA %I OWNER TO %I (as a superuser), or use another schema', 'pgx', CURRENT_USER);
    END IF;
    -- Roles other than the owner that can create objects in it, or act as its owner.
    SELECT pg_catalog.string_agg(DISTINCT w.name, ', ' ORDER BY w.name) INTO others
    FROM (
        SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END AS name, a.grantee
        FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
        WHERE n.nspname = 'pgx' AND a.privilege_type = 'CREATE' AND a.grantee <> owner_oid
        UNION ALL
        SELECT r.rolname::text, r.oid FROM pg_catalog.pg_roles r
        WHERE r.oid <> owner_oid AND pg_catalog.pg_has_role(r.oid, owner_oid, 'MEMBER')
    ) w
    WHERE w.grantee = 0 OR NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = w.grantee);
    IF others IS NOT NULL THEN
        RAISE EXCEPTION 'schema % is writable by % besides its owner %: pgx keeps objects there that run with elevated rights, and a role that can create objects in a schema can plant look-alikes of them',
            'pgx', others, pg_catalog.pg_get_userbyid(owner_oid)
            USING HINT = pg_catalog.format('REVOKE CREATE ON SCHEMA %I FROM ...; revoke memberships in role %I', 'pgx', pg_catalog.pg_get_userbyid(owner_oid));
    END IF;
END
$pgx$;

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
    SELECT pg_catalog.format('%s (column %I)', r.relid, r.tenant_column) INTO problem FROM pgx.tenant_tables r WHERE r.relid = tbl;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION '% is tenant-isolated already: % is in %', 'public.orders', problem, 'pgx.tenant_tables';
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
    -- A member of such a role, however indirectly, can SET ROLE to it (and may inherit it).
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(r.rolname), ', ' ORDER BY r.rolname) INTO problem
    FROM pg_catalog.pg_roles r
    WHERE (r.rolsuper OR r.rolbypassrls) AND pg_catalog.pg_has_role(pg_catalog.to_regrole('app'), r.oid, 'MEMBER');
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'role % bypasses row security: it is, or is a member of, % (superuser or BYPASSRLS); the application needs a role that is neither, directly or through membership',
            'app', problem;
    END IF;
END
$pgx$;

-- Ways around row security next to the table: refused here unless this migration closes them.
DO $pgx$
DECLARE
    tbl regclass := 'public.orders';
    problem text;
BEGIN
    -- Keys kept across tenants must exist.
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(g), ', ') INTO problem
    FROM pg_catalog.unnest(ARRAY['orders_pkey']::name[]) g
    WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
                      LEFT JOIN pg_catalog.pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid
                      WHERE (i.indrelid = tbl OR i.indrelid IN (SELECT p.relid FROM pg_catalog.pg_partition_tree(tbl) p)) AND i.indisunique
                        AND g IN (ic.relname, k.conname));
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'global_unique names %, which % no unique key of %', problem, CASE WHEN problem LIKE '%,%' THEN 'are' ELSE 'is' END, 'public.orders';
    END IF;
    SELECT pg_catalog.string_agg(d.object, ', ' ORDER BY d.object) INTO problem
    FROM pgx.tenant_doors(tbl, 'tenant_id', ARRAY['orders_pkey']::name[]) d
    WHERE d.kind = 'materialized_view';
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'materialized view(s) % read %: row security does not apply to them, and once refreshed by their owner they hold every tenant''s rows',
            problem, 'public.orders'
            USING HINT = pg_catalog.format('drop them, or re-create them per tenant, or as views WITH (security_invoker = true) that filter on %I', 'tenant_id');
    END IF;

    SELECT pg_catalog.string_agg(d.object || ' (owned by ' || pg_catalog.pg_get_userbyid(p.proowner) || ')', ', ' ORDER BY d.object) INTO problem
    FROM pgx.tenant_doors(tbl, 'tenant_id') d JOIN pg_catalog.pg_proc p ON p.oid = (d.data ->> 'oid')::oid
    WHERE d.kind = 'definer';
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'SECURITY DEFINER function(s) % read % with the rights of a role that bypasses row security: they return every tenant''s rows to whoever may call them; make them SECURITY INVOKER, or owned by a role without BYPASSRLS',
            problem, 'public.orders';
    END IF;

    -- Referential checks and cascades bypass row security.
    SELECT pg_catalog.string_agg(d.object, ', ' ORDER BY d.object) INTO problem
    FROM pgx.tenant_doors(tbl, 'tenant_id') d
    WHERE d.kind = 'foreign_key' AND NOT (d.data ->> 'single')::boolean;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'foreign key(s) % cross tenants: referential checks and cascades bypass row security, so a tenant can reference (and so learn of) another tenant''s rows, and a delete cascades into other tenants'' rows',
            problem
            USING HINT = 'include the tenant column in multi-column foreign keys yourself';
    END IF;

    -- Global uniqueness lets a tenant take values another needs, and find out which values
    -- the others use.
    SELECT pg_catalog.string_agg(d.object, ', ' ORDER BY d.object) INTO problem
    FROM pgx.tenant_doors(tbl, 'tenant_id', ARRAY['orders_pkey']::name[]) d
    WHERE d.kind = 'unique'
      AND coalesce(NOT d.data ->> 'column' = ANY (ARRAY['email', 'Code']::name[]), true);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'unique key(s) % do not hold %: they are unique across tenants, so one tenant can take a value another needs and find out which values other tenants use',
            problem, 'tenant_id'
            USING HINT = 'render with --set unique=<column> for single-column keys (unique per tenant instead), include the tenant column in the others, or keep them global with --set global_unique=<key name>,...';
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

-- The table in pgx's registry, with what is there before this migration changes it (for the
-- down migration). Only the migrating role can write the registry.
DO $pgx$
DECLARE
    tbl regclass := 'public.orders';
    state jsonb;
    prior text;
    saved regclass;
BEGIN
    SELECT pg_catalog.jsonb_build_object('row_security', c.relrowsecurity, 'force_row_security', c.relforcerowsecurity)
    INTO state FROM pg_catalog.pg_class c WHERE c.oid = tbl;
    -- The column's default is kept as the default of a column of a table in pgx's schema: as
    -- the server's parsed expression, not as text anyone could edit.
    SELECT state || pg_catalog.jsonb_build_object('column_not_null', a.attnotnull), pg_catalog.pg_get_expr(d.adbin, d.adrelid)
    INTO state, prior
    FROM pg_catalog.pg_attribute a
    LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = tbl AND a.attname = 'tenant_id';
    IF prior IS NOT NULL THEN
        EXECUTE pg_catalog.format('CREATE TABLE %s (saved %s DEFAULT %s)', 'pgx."tenant_default_public.orders"', 'uuid'::regtype, prior);
        saved := pg_catalog.to_regclass('pgx."tenant_default_public.orders"');
    END IF;
    -- Privileges the role already held are kept by the down migration.
    SELECT state || pg_catalog.jsonb_build_object('privileges_held', coalesce(pg_catalog.jsonb_agg(p.privilege_type), '[]'))
    INTO state
    FROM pg_catalog.pg_class c, pg_catalog.aclexplode(coalesce(c.relacl, pg_catalog.acldefault('r', c.relowner))) p
    WHERE c.oid = tbl AND p.grantee = 'app'::regrole
      AND p.privilege_type IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE');
    -- `partitions` is set once the policies exist: until then the event trigger leaves the
    -- table's partitions alone.
    INSERT INTO pgx.tenant_tables (relid, tenant_column, current_tenant, isolation_policy, access_policy, partitions, citus, global_unique, restore, saved_default)
    VALUES (tbl, 'tenant_id', 'public.orders_current_tenant()'::regprocedure, 'orders_tenant_isolation', 'orders_tenant_access', false, false,
            ARRAY['orders_pkey']::name[], state, saved);
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

-- Keys, foreign keys and the views reading the table.
DO $pgx$
DECLARE
    tbl regclass := 'public.orders';
    state jsonb := (SELECT r.restore FROM pgx.tenant_tables r WHERE r.relid = 'public.orders'::regclass);
    problem text;
    key jsonb;
    fk jsonb;
    rec record;
BEGIN

    -- Foreign keys between tenant tables pair the tenant columns: (tenant, column) references a
    -- (tenant, key) unique key, created when the referenced table has none.
    state := state || '{"foreign_keys": [], "created_keys": []}';
    FOR rec IN
        SELECT (d.data ->> 'oid')::oid AS oid, (d.data ->> 'parent')::oid::regclass AS parent,
               d.data ->> 'child_tenant' AS child_tenant, d.data ->> 'parent_tenant' AS parent_tenant
        FROM pgx.tenant_doors(tbl, 'tenant_id') d
        WHERE d.kind = 'foreign_key'
    LOOP
        fk := pgx.tenant_foreign_key(rec.oid);
        IF NOT EXISTS (
            SELECT FROM pg_catalog.pg_index i
            WHERE i.indrelid = rec.parent AND i.indisunique AND i.indimmediate AND i.indisvalid
              AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indnkeyatts = 2
              AND (SELECT pg_catalog.array_agg(a.attname ORDER BY a.attname) FROM pg_catalog.pg_attribute a
                   WHERE a.attrelid = i.indrelid AND a.attnum = ANY ((i.indkey::int2[])[0:1]))
                  = (SELECT pg_catalog.array_agg(x ORDER BY x) FROM pg_catalog.unnest(ARRAY[rec.parent_tenant, fk -> 'ref_columns' ->> 0]::name[]) x)
        ) THEN
            EXECUTE pg_catalog.format('ALTER TABLE %s ADD UNIQUE (%I, %I)', rec.parent, rec.parent_tenant, fk -> 'ref_columns' ->> 0);
            SELECT pg_catalog.jsonb_build_object('schema', n.nspname, 'table', c.relname, 'name', k.conname) INTO key
            FROM pg_catalog.pg_constraint k
            JOIN pg_catalog.pg_class c ON c.oid = k.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE k.conrelid = rec.parent AND k.contype = 'u'
              AND k.conkey = ARRAY(SELECT a.attnum FROM pg_catalog.unnest(ARRAY[rec.parent_tenant, fk -> 'ref_columns' ->> 0]::name[]) WITH ORDINALITY u(c, n)
                                   JOIN pg_catalog.pg_attribute a ON a.attrelid = rec.parent AND a.attname = u.c ORDER BY u.n);
            state := pg_catalog.jsonb_insert(state, '{created_keys, -1}', key, true);
        END IF;
        EXECUTE pg_catalog.format('ALTER TABLE %I.%I DROP CONSTRAINT %I', fk ->> 'schema', fk ->> 'table', fk ->> 'name');
        BEGIN
            PERFORM pgx.tenant_create_foreign_key(fk || pg_catalog.jsonb_build_object(
                'columns', pg_catalog.jsonb_build_array(rec.child_tenant) || (fk -> 'columns'),
                'ref_columns', pg_catalog.jsonb_build_array(rec.parent_tenant) || (fk -> 'ref_columns'),
                -- ON DELETE SET NULL / SET DEFAULT must not touch the tenant column.
                'set_columns', CASE WHEN fk ->> 'on_delete' IN ('n', 'd') AND pg_catalog.jsonb_array_length(fk -> 'set_columns') = 0
                                    THEN fk -> 'columns' ELSE fk -> 'set_columns' END));
        EXCEPTION WHEN foreign_key_violation THEN
            RAISE EXCEPTION 'rows of %.% reference rows of % that belong to another tenant (foreign key %): give them the right tenant first',
                pg_catalog.quote_ident(fk ->> 'schema'), pg_catalog.quote_ident(fk ->> 'table'), rec.parent, pg_catalog.quote_ident(fk ->> 'name')
                USING DETAIL = SQLERRM;
        END;
        state := pg_catalog.jsonb_insert(state, '{foreign_keys, -1}', fk, true);
    END LOOP;

    -- Uniqueness per tenant replaces uniqueness across tenants on the same column.
    state := state || '{"replaced": []}';
    FOR rec IN
        SELECT (d.data ->> 'index')::oid AS index, d.data ->> 'constraint' AS constraint_name
        FROM pgx.tenant_doors(tbl, 'tenant_id', ARRAY['orders_pkey']::name[]) d
        WHERE d.kind = 'unique' AND d.data ->> 'column' = ANY (ARRAY['email', 'Code']::name[])
    LOOP
        SELECT pg_catalog.string_agg(f.conrelid::regclass::text, ', ') INTO problem
        FROM pg_catalog.pg_constraint f WHERE f.contype = 'f' AND f.conindid = rec.index;
        IF problem IS NOT NULL THEN
            RAISE EXCEPTION 'cannot make % unique per tenant: foreign keys of % reference its unique key %; make them include the tenant column first',
                'public.orders', problem, rec.index::regclass;
        END IF;
        key := pgx.tenant_key(rec.index);
        IF rec.constraint_name IS NOT NULL THEN
            EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', tbl, rec.constraint_name);
        ELSE
            EXECUTE pg_catalog.format('DROP INDEX %s', rec.index::regclass);
        END IF;
        state := pg_catalog.jsonb_insert(state, '{replaced, -1}', key, true);
    END LOOP;

    -- Views over the table or its partitions run with the querying role's rights, so its
    -- policies apply.
    state := state || '{"secured_views": []}';
    FOR rec IN
        SELECT (d.data ->> 'oid')::oid::regclass AS view, n.nspname AS schema, c.relname AS name
        FROM pgx.tenant_doors(tbl, 'tenant_id') d
        JOIN pg_catalog.pg_class c ON c.oid = (d.data ->> 'oid')::oid
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE d.kind = 'view'
    LOOP
        EXECUTE pg_catalog.format('ALTER VIEW %s SET (security_invoker = true)', rec.view);
        state := pg_catalog.jsonb_insert(state, '{secured_views, -1}',
            pg_catalog.jsonb_build_object('schema', rec.schema, 'name', rec.name), true);
    END LOOP;
    UPDATE pgx.tenant_tables r SET restore = state WHERE r.relid = tbl;
END
$pgx$;
ALTER TABLE public.orders ADD CONSTRAINT orders_tenant_id_email_key UNIQUE (tenant_id, email);
ALTER TABLE public.orders ADD CONSTRAINT "orders_tenant_id_Code_key" UNIQUE (tenant_id, "Code");

-- An index led by the tenant column serves every query through the policy.
DO $pgx$
DECLARE
    tbl regclass := 'public.orders';
    state jsonb := (SELECT r.restore FROM pgx.tenant_tables r WHERE r.relid = 'public.orders'::regclass);
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
    UPDATE pgx.tenant_tables r SET restore = state WHERE r.relid = tbl;
END
$pgx$;

-- Row security, forced so that the table's owner is confined as well.
ALTER TABLE public.orders ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

-- Isolation is RESTRICTIVE: no permissive policy added later can widen it. The second policy
-- grants what isolation allows; to narrow further, add RESTRICTIVE policies (or replace it).
CREATE POLICY orders_tenant_isolation ON public.orders AS RESTRICTIVE FOR ALL TO PUBLIC
    USING (tenant_id = (SELECT public.orders_current_tenant()))
    WITH CHECK (tenant_id = (SELECT public.orders_current_tenant()));

CREATE POLICY orders_tenant_access ON public.orders AS PERMISSIVE FOR ALL TO PUBLIC
    USING (true)
    WITH CHECK (true);

-- The isolation expression as the server prints it: policies found later (on partitions, by
-- `pgx tenant check`) are compared with it.
UPDATE pgx.tenant_tables r SET policy_expression = pg_catalog.pg_get_expr(p.polqual, p.polrelid)
FROM pg_catalog.pg_policy p
WHERE r.relid = 'public.orders'::regclass AND p.polrelid = r.relid AND p.polname = 'orders_tenant_isolation';

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

-- What this migration promises, checked in the catalog before it commits.
DO $pgx$
DECLARE
    problem text;
BEGIN
    SELECT pg_catalog.string_agg(d.detail, '; ' ORDER BY d.kind, d.object) INTO problem
    FROM pgx.tenant_doors('public.orders', 'tenant_id', ARRAY['orders_pkey']::name[]) d
    WHERE d.kind IN ('row_security', 'policy', 'partition_policy', 'index');
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'the isolation of % is incomplete: %', 'public.orders', problem;
    END IF;
END
$pgx$;

-- The session's search_path again, for the runner's bookkeeping.
SELECT pg_catalog.set_config('search_path', pg_catalog.current_setting('pgx.search_path'), true);
