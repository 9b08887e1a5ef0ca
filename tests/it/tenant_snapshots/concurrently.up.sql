-- pgx 0.1.0: pattern "tenant" (up)
-- step 1 of 6: "prepare"
-- table: "public"."orders"
-- param column = "tenant_id"
-- param type = "bigint"
-- param setting = "app.current_tenant"
-- param add_column = true
-- param backfill = "7"
-- param references = {"columns":["id"],"schema":null,"table":"tenants"}
-- param role = null
-- param unique = ["email"]
-- param global_unique = []
-- param composite_keys = false
-- param strict = false
-- param partitioned = false
-- param view = null
-- param secure_views = false
-- param concurrently = true
-- param distribute = "none"
-- param pgx_schema = "pgx"
-- param lock_timeout = "100ms"

-- The column and NOT VALID constraints: quick changes under a short lock. What takes long
-- (validating, building indexes) follows in steps of its own, which do not block writes.
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
    IF col_type IS NOT NULL THEN
        RAISE EXCEPTION '% already has a column %: render this migration with --set add_column=false to use it', 'public.orders', 'tenant_id';
    END IF;

    -- The backfill value must be a valid tenant id.
    PERFORM '7'::int8;
END
$pgx$;

-- Ways around row security next to the table: refused here unless this migration closes them.
DO $pgx$
DECLARE
    tbl regclass := 'public.orders';
    problem text;
BEGIN
    SELECT pg_catalog.string_agg(d.object, ', ' ORDER BY d.object) INTO problem
    FROM pgx.tenant_doors(tbl, 'tenant_id', ARRAY[]::name[]) d
    WHERE d.kind = 'materialized_view';
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'materialized view(s) % read %: row security does not apply to them, and once refreshed by their owner they hold every tenant''s rows',
            problem, 'public.orders'
            USING HINT = pg_catalog.format('drop them, or re-create them per tenant, or as views WITH (security_invoker = true) that filter on %I', 'tenant_id');
    END IF;

    -- A view runs with its owner's rights unless it is security_invoker: owned by a superuser
    -- or a BYPASSRLS role, it would show every tenant's rows.
    SELECT pg_catalog.string_agg(d.object, ', ' ORDER BY d.object) INTO problem
    FROM pgx.tenant_doors(tbl, 'tenant_id') d WHERE d.kind = 'view';
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'view(s) % read % with their owner''s rights: recreate them WITH (security_invoker = true), or render with --set secure_views=true to switch them', problem, 'public.orders';
    END IF;

    SELECT pg_catalog.string_agg(d.object || ' (owned by ' || pg_catalog.pg_get_userbyid(p.proowner) || ')', ', ' ORDER BY d.object) INTO problem
    FROM pgx.tenant_doors(tbl, 'tenant_id') d JOIN pg_catalog.pg_proc p ON p.oid = (d.data ->> 'oid')::oid
    WHERE d.kind = 'definer';
    IF problem IS NOT NULL THEN
        RAISE WARNING 'SECURITY DEFINER function(s) % read % with the rights of a role that bypasses row security: they return every tenant''s rows to whoever may call them; make them SECURITY INVOKER, or owned by a role without BYPASSRLS (render with --set strict=true to refuse them)',
            problem, 'public.orders';
    END IF;

    -- Referential checks and cascades bypass row security.
    SELECT pg_catalog.string_agg(d.object, ', ' ORDER BY d.object) INTO problem
    FROM pgx.tenant_doors(tbl, 'tenant_id') d
    WHERE d.kind = 'foreign_key';
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'foreign key(s) % cross tenants: referential checks and cascades bypass row security, so a tenant can reference (and so learn of) another tenant''s rows, and a delete cascades into other tenants'' rows',
            problem
            USING HINT = 'render with --set composite_keys=true to make each a (tenant column, column) reference to a (tenant column, key) unique key, or include the tenant column yourself';
    END IF;

    -- Global uniqueness lets a tenant take values another needs, and find out which values
    -- the others use.
    SELECT pg_catalog.string_agg(d.object, ', ' ORDER BY d.object) INTO problem
    FROM pgx.tenant_doors(tbl, 'tenant_id', ARRAY[]::name[]) d
    WHERE d.kind = 'unique'
      AND coalesce(NOT d.data ->> 'column' = ANY (ARRAY['email']::name[]), true);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'unique key(s) % do not hold %: they are unique across tenants, so one tenant can take a value another needs and find out which values other tenants use',
            problem, 'tenant_id'
            USING HINT = 'render with --set unique=<column> for single-column keys (unique per tenant instead), include the tenant column in the others, or keep them global with --set global_unique=<key name>,...';
    END IF;
END
$pgx$;

DO $pgx$
BEGIN
    -- The indexes the next steps build are looked up by name (CREATE INDEX ... IF NOT EXISTS):
    -- none may exist yet.
    IF EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.relnamespace = 'public'::regnamespace
               AND c.relname IN ('orders_tenant_id_email_key')) THEN
        RAISE EXCEPTION 'a relation named like an index this migration builds (%) exists in schema %: rename it first',
            pg_catalog.array_to_string(ARRAY['orders_tenant_id_email_key'], ', '), 'public';
    END IF;
END
$pgx$;

ALTER TABLE public.orders ADD COLUMN tenant_id int8 NOT NULL DEFAULT '7'::int8;

ALTER TABLE public.orders ADD CONSTRAINT orders_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants (id) NOT VALID;

-- The session's search_path again, for the runner's bookkeeping.
SELECT pg_catalog.set_config('search_path', pg_catalog.current_setting('pgx.search_path'), true);
-- pgx 0.1.0: pattern "tenant" (up)
-- step 2 of 6: "validate"
-- table: "public"."orders"
-- param column = "tenant_id"
-- param type = "bigint"
-- param setting = "app.current_tenant"
-- param add_column = true
-- param backfill = "7"
-- param references = {"columns":["id"],"schema":null,"table":"tenants"}
-- param role = null
-- param unique = ["email"]
-- param global_unique = []
-- param composite_keys = false
-- param strict = false
-- param partitioned = false
-- param view = null
-- param secure_views = false
-- param concurrently = true
-- param distribute = "none"
-- param pgx_schema = "pgx"
-- param lock_timeout = "100ms"

-- Validating scans the table holding a lock that lets writes through.
SET LOCAL lock_timeout = '100ms';
-- Names resolve in pg_catalog only until the end of this migration, whatever the session's
-- search_path says (which a less privileged role may have filled with look-alikes).
SELECT pg_catalog.set_config('pgx.search_path', pg_catalog.current_setting('search_path'), true),
       pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

ALTER TABLE public.orders VALIDATE CONSTRAINT orders_tenant_id_fkey;

-- The session's search_path again, for the runner's bookkeeping.
SELECT pg_catalog.set_config('search_path', pg_catalog.current_setting('pgx.search_path'), true);
-- no-transaction
-- pgx 0.1.0: pattern "tenant" (up)
-- step 3 of 6: "build_1"
-- table: "public"."orders"
-- param column = "tenant_id"
-- param type = "bigint"
-- param setting = "app.current_tenant"
-- param add_column = true
-- param backfill = "7"
-- param references = {"columns":["id"],"schema":null,"table":"tenants"}
-- param role = null
-- param unique = ["email"]
-- param global_unique = []
-- param composite_keys = false
-- param strict = false
-- param partitioned = false
-- param view = null
-- param secure_views = false
-- param concurrently = true
-- param distribute = "none"
-- param pgx_schema = "pgx"
-- param lock_timeout = "100ms"
-- Runs outside a transaction: each statement commits on its own.

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS orders_tenant_id_email_key ON public.orders (tenant_id, email);
-- pgx 0.1.0: pattern "tenant" (up)
-- step 4 of 6: "retry"
-- table: "public"."orders"
-- param column = "tenant_id"
-- param type = "bigint"
-- param setting = "app.current_tenant"
-- param add_column = true
-- param backfill = "7"
-- param references = {"columns":["id"],"schema":null,"table":"tenants"}
-- param role = null
-- param unique = ["email"]
-- param global_unique = []
-- param composite_keys = false
-- param strict = false
-- param partitioned = false
-- param view = null
-- param secure_views = false
-- param concurrently = true
-- param distribute = "none"
-- param pgx_schema = "pgx"
-- param lock_timeout = "100ms"

-- A build interrupted earlier (cancelled, a duplicate, a deadlock) leaves an invalid index that
-- CREATE INDEX ... IF NOT EXISTS then skips: drop it, for the next steps to build it again.
SET LOCAL lock_timeout = '100ms';
-- Names resolve in pg_catalog only until the end of this migration, whatever the session's
-- search_path says (which a less privileged role may have filled with look-alikes).
SELECT pg_catalog.set_config('pgx.search_path', pg_catalog.current_setting('search_path'), true),
       pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

DO $pgx$
DECLARE
    leftover regclass;
BEGIN
    FOR leftover IN
        SELECT i.indexrelid FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
        WHERE i.indrelid = 'public.orders'::regclass AND NOT i.indisvalid
          AND ic.relname IN ('orders_tenant_id_email_key')
    LOOP
        EXECUTE pg_catalog.format('DROP INDEX %s', leftover);
    END LOOP;
END
$pgx$;

-- The session's search_path again, for the runner's bookkeeping.
SELECT pg_catalog.set_config('search_path', pg_catalog.current_setting('pgx.search_path'), true);
-- no-transaction
-- pgx 0.1.0: pattern "tenant" (up)
-- step 5 of 6: "rebuild_1"
-- table: "public"."orders"
-- param column = "tenant_id"
-- param type = "bigint"
-- param setting = "app.current_tenant"
-- param add_column = true
-- param backfill = "7"
-- param references = {"columns":["id"],"schema":null,"table":"tenants"}
-- param role = null
-- param unique = ["email"]
-- param global_unique = []
-- param composite_keys = false
-- param strict = false
-- param partitioned = false
-- param view = null
-- param secure_views = false
-- param concurrently = true
-- param distribute = "none"
-- param pgx_schema = "pgx"
-- param lock_timeout = "100ms"
-- Runs outside a transaction: each statement commits on its own.

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS orders_tenant_id_email_key ON public.orders (tenant_id, email);
-- pgx 0.1.0: pattern "tenant" (up)
-- step 6 of 6: "isolate"
-- table: "public"."orders"
-- param column = "tenant_id"
-- param type = "bigint"
-- param setting = "app.current_tenant"
-- param add_column = true
-- param backfill = "7"
-- param references = {"columns":["id"],"schema":null,"table":"tenants"}
-- param role = null
-- param unique = ["email"]
-- param global_unique = []
-- param composite_keys = false
-- param strict = false
-- param partitioned = false
-- param view = null
-- param secure_views = false
-- param concurrently = true
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

-- Ways around row security next to the table: refused here unless this migration closes them.
DO $pgx$
DECLARE
    tbl regclass := 'public.orders';
    problem text;
BEGIN
    SELECT pg_catalog.string_agg(d.object, ', ' ORDER BY d.object) INTO problem
    FROM pgx.tenant_doors(tbl, 'tenant_id', ARRAY[]::name[]) d
    WHERE d.kind = 'materialized_view';
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'materialized view(s) % read %: row security does not apply to them, and once refreshed by their owner they hold every tenant''s rows',
            problem, 'public.orders'
            USING HINT = pg_catalog.format('drop them, or re-create them per tenant, or as views WITH (security_invoker = true) that filter on %I', 'tenant_id');
    END IF;

    -- A view runs with its owner's rights unless it is security_invoker: owned by a superuser
    -- or a BYPASSRLS role, it would show every tenant's rows.
    SELECT pg_catalog.string_agg(d.object, ', ' ORDER BY d.object) INTO problem
    FROM pgx.tenant_doors(tbl, 'tenant_id') d WHERE d.kind = 'view';
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'view(s) % read % with their owner''s rights: recreate them WITH (security_invoker = true), or render with --set secure_views=true to switch them', problem, 'public.orders';
    END IF;

    SELECT pg_catalog.string_agg(d.object || ' (owned by ' || pg_catalog.pg_get_userbyid(p.proowner) || ')', ', ' ORDER BY d.object) INTO problem
    FROM pgx.tenant_doors(tbl, 'tenant_id') d JOIN pg_catalog.pg_proc p ON p.oid = (d.data ->> 'oid')::oid
    WHERE d.kind = 'definer';
    IF problem IS NOT NULL THEN
        RAISE WARNING 'SECURITY DEFINER function(s) % read % with the rights of a role that bypasses row security: they return every tenant''s rows to whoever may call them; make them SECURITY INVOKER, or owned by a role without BYPASSRLS (render with --set strict=true to refuse them)',
            problem, 'public.orders';
    END IF;

    -- Referential checks and cascades bypass row security.
    SELECT pg_catalog.string_agg(d.object, ', ' ORDER BY d.object) INTO problem
    FROM pgx.tenant_doors(tbl, 'tenant_id') d
    WHERE d.kind = 'foreign_key';
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'foreign key(s) % cross tenants: referential checks and cascades bypass row security, so a tenant can reference (and so learn of) another tenant''s rows, and a delete cascades into other tenants'' rows',
            problem
            USING HINT = 'render with --set composite_keys=true to make each a (tenant column, column) reference to a (tenant column, key) unique key, or include the tenant column yourself';
    END IF;

    -- Global uniqueness lets a tenant take values another needs, and find out which values
    -- the others use.
    SELECT pg_catalog.string_agg(d.object, ', ' ORDER BY d.object) INTO problem
    FROM pgx.tenant_doors(tbl, 'tenant_id', ARRAY[]::name[]) d
    WHERE d.kind = 'unique'
      AND coalesce(NOT d.data ->> 'column' = ANY (ARRAY['email']::name[]), true);
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
CREATE FUNCTION public.orders_current_tenant() RETURNS int8
    LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE
    WHEN pg_catalog.current_setting('app.current_tenant', true) ~ '^[-+]?[0-9]{1,19}$'
    THEN CASE
        WHEN pg_catalog.current_setting('app.current_tenant', true)::numeric BETWEEN -9223372036854775808 AND 9223372036854775807
        THEN pg_catalog.current_setting('app.current_tenant', true)::int8
    END
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
        EXECUTE pg_catalog.format('CREATE TABLE %s (saved %s DEFAULT %s)', 'pgx."tenant_default_public.orders"', 'int8'::regtype, prior);
        saved := pg_catalog.to_regclass('pgx."tenant_default_public.orders"');
    END IF;
    -- `partitions` is set once the policies exist: until then the event trigger leaves the
    -- table's partitions alone.
    INSERT INTO pgx.tenant_tables (relid, tenant_column, current_tenant, isolation_policy, access_policy, partitions, citus, global_unique, restore, saved_default)
    VALUES (tbl, 'tenant_id', 'public.orders_current_tenant()'::regprocedure, 'orders_tenant_isolation', 'orders_tenant_access', false, false,
            ARRAY[]::name[], state, saved);
END
$pgx$;

-- The tenant column: NOT NULL, defaulting to the current tenant.
ALTER TABLE public.orders ALTER COLUMN tenant_id SET DEFAULT public.orders_current_tenant();
-- No scan under this lock: the column is NOT NULL already, or the CHECK validated by an earlier
-- step proves it. That CHECK stays: dropping it here would make the down migration validate it
-- again while holding the table's exclusive lock.
ALTER TABLE public.orders ALTER COLUMN tenant_id SET NOT NULL;

-- Keys, foreign keys and the views reading the table.
DO $pgx$
DECLARE
    tbl regclass := 'public.orders';
    state jsonb := (SELECT r.restore FROM pgx.tenant_tables r WHERE r.relid = 'public.orders'::regclass);
    problem text;
    key jsonb;
    rec record;
BEGIN

    -- Uniqueness per tenant replaces uniqueness across tenants on the same column.
    state := state || '{"replaced": []}';
    FOR rec IN
        SELECT (d.data ->> 'index')::oid AS index, d.data ->> 'constraint' AS constraint_name
        FROM pgx.tenant_doors(tbl, 'tenant_id', ARRAY[]::name[]) d
        WHERE d.kind = 'unique' AND d.data ->> 'column' = ANY (ARRAY['email']::name[])
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
    UPDATE pgx.tenant_tables r SET restore = state WHERE r.relid = tbl;
END
$pgx$;

-- An index led by the tenant column serves every query through the policy.
DO $pgx$
DECLARE
    tbl regclass := 'public.orders';
    state jsonb := (SELECT r.restore FROM pgx.tenant_tables r WHERE r.relid = 'public.orders'::regclass);
    wanted record;
    key jsonb;
BEGIN
    -- Built by the earlier steps; an index of the same name that is not the one they build (a
    -- look-alike, or one a second interruption left invalid) is an error.
    FOR wanted IN
        SELECT * FROM (VALUES
            ('orders_tenant_id_email_key', ARRAY['tenant_id', 'email']::name[], true)
        ) AS w(name, columns, is_unique)
    LOOP
        SELECT pgx.tenant_key(i.indexrelid) || pg_catalog.jsonb_build_object('valid', i.indisvalid, 'unique', i.indisunique) INTO key
        FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
        WHERE i.indrelid = tbl AND ic.relname = wanted.name;
        IF key IS NULL OR NOT (key ->> 'valid')::boolean OR (key ->> 'unique')::boolean <> wanted.is_unique
           OR NOT (key ->> 'plain')::boolean OR key -> 'columns' <> pg_catalog.to_jsonb(wanted.columns)
           OR pg_catalog.jsonb_array_length(key -> 'include') > 0 THEN
            RAISE EXCEPTION 'index % on % is not the index this migration builds (% btree index on %)%', wanted.name, 'public.orders',
                CASE WHEN wanted.is_unique THEN 'a valid unique' ELSE 'a valid' END, wanted.columns,
                CASE WHEN key IS NOT NULL AND NOT (key ->> 'valid')::boolean
                     THEN ': it is invalid, left by an interrupted build; drop it (DROP INDEX CONCURRENTLY), revert this migration''s earlier steps with pgx migrate down, and apply them again'
                     ELSE '' END;
        END IF;
    END LOOP;
    -- Dropped by the down migration of the step that built it.
    state := state || '{"index_created": false}';
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

-- What this migration promises, checked in the catalog before it commits.
DO $pgx$
DECLARE
    problem text;
BEGIN
    SELECT pg_catalog.string_agg(d.detail, '; ' ORDER BY d.kind, d.object) INTO problem
    FROM pgx.tenant_doors('public.orders', 'tenant_id', ARRAY[]::name[]) d
    WHERE d.kind IN ('row_security', 'policy', 'partition_policy', 'index');
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'the isolation of % is incomplete: %', 'public.orders', problem;
    END IF;
END
$pgx$;

-- The session's search_path again, for the runner's bookkeeping.
SELECT pg_catalog.set_config('search_path', pg_catalog.current_setting('pgx.search_path'), true);
