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
-- param global_unique = []
-- param composite_keys = false
-- param strict = false
-- param partitioned = false
-- param view = null
-- param secure_views = false
-- param concurrently = false
-- param distribute = "citus"
-- param pgx_schema = "pgx"
-- param lock_timeout = "100ms"

SET LOCAL lock_timeout = '100ms';
-- Citus: one shard at a time, so that changes to the table and to the functions it uses can
-- share this transaction.
SET LOCAL citus.multi_shard_modify_mode TO 'sequential';
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
    distributed oid[];
    identity_column name;
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
    IF EXISTS (SELECT FROM public.orders) THEN
        RAISE EXCEPTION '% has rows, and this migration has no tenant to give them: render it with --set backfill=<tenant id> to give them all one tenant, or add and fill the column yourself and render it with --set add_column=false', 'public.orders'
            USING HINT = pg_catalog.format('ALTER TABLE %s ADD COLUMN %I %s; UPDATE %s SET %I = ...', 'public.orders', 'tenant_id', 'text'::regtype, 'public.orders', 'tenant_id');
    END IF;

    -- Citus: what would make the distribution irreversible, or leave something unenforced.
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum), (pg_catalog.array_agg(a.attname ORDER BY a.attnum))[1]
    INTO problem, identity_column
    FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity <> '';
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION '% has identity column(s) %: Citus cannot undistribute a table with an identity column, so this migration could never be reverted; make them plain sequence defaults first',
            'public.orders', problem
            USING HINT = pg_catalog.format('for %2$I: ALTER TABLE %1$s ALTER COLUMN %2$I DROP IDENTITY; CREATE SEQUENCE %3$s OWNED BY %1$s.%2$I; SELECT setval(%4$L, max(%2$I)) FROM %1$s; ALTER TABLE %1$s ALTER COLUMN %2$I SET DEFAULT nextval(%4$L)',
                'public.orders', identity_column, pg_catalog.quote_ident(identity_column || '_seq'), pg_catalog.quote_ident(identity_column || '_seq'));
    END IF;
    -- Local (not distributed) tables referencing it: Citus accepts them, and their ON DELETE
    -- CASCADE silently stops working; undistribute_table refuses while they exist.
    -- Citus's catalog of distributed (and reference) tables, when there is one.
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        EXECUTE pg_catalog.format('SELECT pg_catalog.array_agg(d.logicalrelid::oid) FROM %s d', pg_catalog.to_regclass('pg_catalog.pg_dist_partition'))
        INTO distributed;
    END IF;
    SELECT pg_catalog.string_agg(DISTINCT k.conrelid::regclass::text, ', ') INTO problem
    FROM pg_catalog.pg_constraint k
    WHERE k.contype = 'f' AND k.confrelid = tbl AND k.conrelid <> tbl
      AND k.conrelid::oid <> ALL (coalesce(distributed, '{}'));
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'local table(s) % reference %: on Citus their foreign keys to a distributed table stop cascading, and the table could not be undistributed again; distribute them first (by the tenant column), or drop the foreign keys',
            problem, 'public.orders';
    END IF;
    -- Triggers (the audit pattern's, timestamps): Citus refuses them on distributed tables, and
    -- with citus.enable_unsafe_triggers the audit triggers fire on the shards and record nothing.
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(g.tgname), ', ' ORDER BY g.tgname) INTO problem
    FROM pg_catalog.pg_trigger g WHERE g.tgrelid = tbl AND NOT g.tgisinternal;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION '% has trigger(s) %: Citus refuses triggers on a distributed table, and with citus.enable_unsafe_triggers audit triggers would fire on the shards and record nothing; revert the migrations that added them first',
            'public.orders', problem;
    END IF;
    -- Citus re-creates policies on the shards without AS RESTRICTIVE: any other policy would be
    -- OR'd with isolation there.
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(p.polname), ', ' ORDER BY p.polname) INTO problem
    FROM pg_catalog.pg_policy p WHERE p.polrelid = tbl;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION '% has policy(ies) %: Citus makes every policy permissive on the shards, where it would widen tenant isolation; drop them first',
            'public.orders', problem;
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
      AND coalesce(NOT d.data ->> 'column' = ANY (ARRAY['number']::name[]), true)
      AND d.data ->> 'constraint' IS NULL;
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
CREATE FUNCTION public.orders_current_tenant() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
RETURN NULLIF(pg_catalog.current_setting('app.current_tenant', true), '');

-- The table in pgx's registry, with what is there before this migration changes it (for the
-- down migration). Only the migrating role can write the registry.
DO $pgx$
DECLARE
    tbl regclass := 'public.orders';
    state jsonb;
BEGIN
    SELECT pg_catalog.jsonb_build_object('row_security', c.relrowsecurity, 'force_row_security', c.relforcerowsecurity)
    INTO state FROM pg_catalog.pg_class c WHERE c.oid = tbl;
    -- `partitions` is set once the policies exist: until then the event trigger leaves the
    -- table's partitions alone.
    INSERT INTO pgx.tenant_tables (relid, tenant_column, current_tenant, isolation_policy, access_policy, partitions, citus, global_unique, restore)
    VALUES (tbl, 'tenant_id', 'public.orders_current_tenant()'::regprocedure, 'orders_tenant_isolation', NULL, false, true,
            ARRAY[]::name[], state);
END
$pgx$;

-- The tenant column: NOT NULL, defaulting to the current tenant.
ALTER TABLE public.orders ADD COLUMN tenant_id text NOT NULL DEFAULT public.orders_current_tenant();

-- Keys, foreign keys and the views reading the table.
DO $pgx$
DECLARE
    tbl regclass := 'public.orders';
    state jsonb := (SELECT r.restore FROM pgx.tenant_tables r WHERE r.relid = 'public.orders'::regclass);
    tenant_attnum int2;
    problem text;
    key jsonb;
    rec record;
BEGIN

    -- Uniqueness per tenant replaces uniqueness across tenants on the same column.
    state := state || '{"replaced": []}';
    FOR rec IN
        SELECT (d.data ->> 'index')::oid AS index, d.data ->> 'constraint' AS constraint_name
        FROM pgx.tenant_doors(tbl, 'tenant_id', ARRAY[]::name[]) d
        WHERE d.kind = 'unique' AND d.data ->> 'column' = ANY (ARRAY['number']::name[])
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

    -- Citus enforces a primary or unique key only if it holds the distribution column: put the
    -- tenant column first in every key that lacks it.
    state := state || '{"rekeyed": []}';
    SELECT a.attnum INTO tenant_attnum FROM pg_catalog.pg_attribute a WHERE a.attrelid = tbl AND a.attname = 'tenant_id';
    FOR rec IN
        SELECT k.conname AS name, k.conindid AS index,
               (SELECT pg_catalog.string_agg(f.conrelid::regclass::text, ', ') FROM pg_catalog.pg_constraint f
                WHERE f.contype = 'f' AND f.conindid = k.conindid) AS referenced_by
        FROM pg_catalog.pg_constraint k
        WHERE k.conrelid = tbl AND k.contype IN ('p', 'u') AND NOT tenant_attnum = ANY (k.conkey)
    LOOP
        IF rec.referenced_by IS NOT NULL THEN
            RAISE EXCEPTION 'cannot add the tenant column to key % of %: foreign keys of % reference it; make them include the tenant column first',
                rec.name, 'public.orders', rec.referenced_by;
        END IF;
        key := pgx.tenant_key(rec.index);
        EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', tbl, rec.name);
        PERFORM pgx.tenant_create_key(key || pg_catalog.jsonb_build_object(
            'columns', pg_catalog.jsonb_build_array('tenant_id') || (key -> 'columns')));
        state := pg_catalog.jsonb_insert(state, '{rekeyed, -1}', key, true);
    END LOOP;
    SELECT pg_catalog.string_agg(i.indexrelid::regclass::text, ', ') INTO problem
    FROM pg_catalog.pg_index i
    WHERE i.indrelid = tbl AND i.indisunique AND NOT tenant_attnum = ANY (i.indkey::int2[])
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint k WHERE k.conindid = i.indexrelid);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'unique index(es) % of % lack the tenant column, which Citus requires: recreate them with it first', problem, 'public.orders';
    END IF;
    UPDATE pgx.tenant_tables r SET restore = state WHERE r.relid = tbl;
END
$pgx$;
ALTER TABLE public.orders ADD CONSTRAINT orders_tenant_id_number_key UNIQUE (tenant_id, number);

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

-- Citus: shards by tenant, before the policies so that Citus creates them on every shard.
SELECT pg_catalog.create_distributed_table('public.orders', 'tenant_id');

-- Row security, forced so that the table's owner is confined as well.
ALTER TABLE public.orders ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

-- Citus: one permissive policy, with no subquery. Citus re-creates policies on the shards
-- without AS RESTRICTIVE and refuses subqueries in them; a second permissive policy would be
-- OR'd with this one there. The setting is read per row (STABLE), not once per statement.
CREATE POLICY orders_tenant_isolation ON public.orders AS PERMISSIVE FOR ALL TO PUBLIC
    USING (tenant_id = public.orders_current_tenant())
    WITH CHECK (tenant_id = public.orders_current_tenant());

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
