-- pgx 0.1.0: pattern "tenant" (up)
-- table: "public"."events"
-- param column = "tenant_id"
-- param type = "integer"
-- param setting = "app.current_tenant"
-- param add_column = true
-- param backfill = null
-- param references = null
-- param role = null
-- param unique = []
-- param global_unique = []
-- param composite_keys = false
-- param strict = false
-- param partitioned = true
-- param view = null
-- param secure_views = false
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
    tbl regclass := 'public.events';
    kind "char";
    col_type regtype;
    problem text;
BEGIN
    SELECT c.relkind INTO kind FROM pg_catalog.pg_class c WHERE c.oid = tbl;
    IF kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', 'public.events';
    ELSIF kind <> 'p' THEN
        RAISE EXCEPTION '% is not partitioned: render this migration without --set partitioned=true', 'public.events';
    END IF;
    SELECT pg_catalog.format('%s (column %I)', r.relid, r.tenant_column) INTO problem FROM pgx.tenant_tables r WHERE r.relid = tbl;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION '% is tenant-isolated already: % is in %', 'public.events', problem, 'pgx.tenant_tables';
    END IF;

    -- Fails on a name PostgreSQL would not accept as a custom setting. Local to this statement.
    PERFORM pg_catalog.set_config('app.current_tenant', '', true);

    SELECT a.atttypid INTO col_type FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = tbl AND a.attname = 'tenant_id' AND a.attnum > 0 AND NOT a.attisdropped;
    IF col_type IS NOT NULL THEN
        RAISE EXCEPTION '% already has a column %: render this migration with --set add_column=false to use it', 'public.events', 'tenant_id';
    END IF;
    IF EXISTS (SELECT FROM public.events) THEN
        RAISE EXCEPTION '% has rows, and this migration has no tenant to give them: render it with --set backfill=<tenant id> to give them all one tenant, or add and fill the column yourself and render it with --set add_column=false', 'public.events'
            USING HINT = pg_catalog.format('ALTER TABLE %s ADD COLUMN %I %s; UPDATE %s SET %I = ...', 'public.events', 'tenant_id', 'int4'::regtype, 'public.events', 'tenant_id');
    END IF;
END
$pgx$;

-- Ways around row security next to the table: refused here unless this migration closes them.
DO $pgx$
DECLARE
    tbl regclass := 'public.events';
    problem text;
BEGIN
    SELECT pg_catalog.string_agg(d.object, ', ' ORDER BY d.object) INTO problem
    FROM pgx.tenant_doors(tbl, 'tenant_id', ARRAY[]::name[]) d
    WHERE d.kind = 'materialized_view';
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'materialized view(s) % read %: row security does not apply to them, and once refreshed by their owner they hold every tenant''s rows',
            problem, 'public.events'
            USING HINT = pg_catalog.format('drop them, or re-create them per tenant, or as views WITH (security_invoker = true) that filter on %I', 'tenant_id');
    END IF;

    -- A view runs with its owner's rights unless it is security_invoker: owned by a superuser
    -- or a BYPASSRLS role, it would show every tenant's rows.
    SELECT pg_catalog.string_agg(d.object, ', ' ORDER BY d.object) INTO problem
    FROM pgx.tenant_doors(tbl, 'tenant_id') d WHERE d.kind = 'view';
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'view(s) % read % with their owner''s rights: recreate them WITH (security_invoker = true), or render with --set secure_views=true to switch them', problem, 'public.events';
    END IF;

    SELECT pg_catalog.string_agg(d.object || ' (owned by ' || pg_catalog.pg_get_userbyid(p.proowner) || ')', ', ' ORDER BY d.object) INTO problem
    FROM pgx.tenant_doors(tbl, 'tenant_id') d JOIN pg_catalog.pg_proc p ON p.oid = (d.data ->> 'oid')::oid
    WHERE d.kind = 'definer';
    IF problem IS NOT NULL THEN
        RAISE WARNING 'SECURITY DEFINER function(s) % read % with the rights of a role that bypasses row security: they return every tenant''s rows to whoever may call them; make them SECURITY INVOKER, or owned by a role without BYPASSRLS (render with --set strict=true to refuse them)',
            problem, 'public.events';
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
    WHERE d.kind = 'unique';
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
CREATE FUNCTION public.events_current_tenant() RETURNS int4
    LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE
    WHEN pg_catalog.current_setting('app.current_tenant', true) ~ '^[-+]?[0-9]{1,10}$'
    THEN CASE
        WHEN pg_catalog.current_setting('app.current_tenant', true)::numeric BETWEEN -2147483648 AND 2147483647
        THEN pg_catalog.current_setting('app.current_tenant', true)::int4
    END
END;

-- The table in pgx's registry, with what is there before this migration changes it (for the
-- down migration). Only the migrating role can write the registry.
DO $pgx$
DECLARE
    tbl regclass := 'public.events';
    state jsonb;
BEGIN
    SELECT pg_catalog.jsonb_build_object('row_security', c.relrowsecurity, 'force_row_security', c.relforcerowsecurity)
    INTO state FROM pg_catalog.pg_class c WHERE c.oid = tbl;
    -- `partitions` is set once the policies exist: until then the event trigger leaves the
    -- table's partitions alone.
    INSERT INTO pgx.tenant_tables (relid, tenant_column, current_tenant, isolation_policy, access_policy, partitions, citus, global_unique, restore)
    VALUES (tbl, 'tenant_id', 'public.events_current_tenant()'::regprocedure, 'events_tenant_isolation', 'events_tenant_access', false, false,
            ARRAY[]::name[], state);
END
$pgx$;

-- The tenant column: NOT NULL, defaulting to the current tenant.
ALTER TABLE public.events ADD COLUMN tenant_id int4 NOT NULL DEFAULT public.events_current_tenant();

-- An index led by the tenant column serves every query through the policy.
DO $pgx$
DECLARE
    tbl regclass := 'public.events';
    state jsonb := (SELECT r.restore FROM pgx.tenant_tables r WHERE r.relid = 'public.events'::regclass);
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
        CREATE INDEX events_tenant_id_idx ON public.events (tenant_id);
    END IF;
    state := state || pg_catalog.jsonb_build_object('index_created', found IS NULL);
    UPDATE pgx.tenant_tables r SET restore = state WHERE r.relid = tbl;
END
$pgx$;

-- Row security, forced so that the table's owner is confined as well.
ALTER TABLE public.events ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

-- Isolation is RESTRICTIVE: no permissive policy added later can widen it. The second policy
-- grants what isolation allows; to narrow further, add RESTRICTIVE policies (or replace it).
CREATE POLICY events_tenant_isolation ON public.events AS RESTRICTIVE FOR ALL TO PUBLIC
    USING (tenant_id = (SELECT public.events_current_tenant()))
    WITH CHECK (tenant_id = (SELECT public.events_current_tenant()));

CREATE POLICY events_tenant_access ON public.events AS PERMISSIVE FOR ALL TO PUBLIC
    USING (true)
    WITH CHECK (true);

-- The isolation expression as the server prints it: policies found later (on partitions, by
-- `pgx tenant check`) are compared with it.
UPDATE pgx.tenant_tables r SET policy_expression = pg_catalog.pg_get_expr(p.polqual, p.polrelid)
FROM pg_catalog.pg_policy p
WHERE r.relid = 'public.events'::regclass AND p.polrelid = r.relid AND p.polname = 'events_tenant_isolation';

-- A partition queried directly is checked against its own policies, not its parent's: every
-- partition gets the same forced policies now, and later ones from pgx's event trigger.
DO $pgx$
DECLARE
    tbl regclass := 'public.events';
    state jsonb := (SELECT r.restore FROM pgx.tenant_tables r WHERE r.relid = 'public.events'::regclass);
    part record;
    existing record;
BEGIN
    -- Partitions that had row security before keep it after the down migration.
    state := state || '{"partitions": []}';
    FOR part IN
        SELECT t.relid::regclass AS relid, n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity
        FROM pg_catalog.pg_partition_tree(tbl) t
        JOIN pg_catalog.pg_class c ON c.oid = t.relid
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE t.relid <> tbl
    LOOP
        IF part.relrowsecurity OR part.relforcerowsecurity THEN
            state := pg_catalog.jsonb_insert(state, '{partitions, -1}', pg_catalog.jsonb_build_object(
                'schema', part.nspname, 'name', part.relname,
                'row_security', part.relrowsecurity, 'force_row_security', part.relforcerowsecurity), true);
        END IF;
    END LOOP;
    UPDATE pgx.tenant_tables r SET restore = state, partitions = true WHERE r.relid = tbl;
    FOR part IN SELECT t.relid::regclass AS relid FROM pg_catalog.pg_partition_tree(tbl) t WHERE t.relid <> tbl LOOP
        PERFORM pgx.tenant_isolate_partition(part.relid, tbl);
    END LOOP;

    -- The event trigger: the first partitioned table creates it, the last one's down migration
    -- drops it. One of its name must be pgx's.
    SELECT e.evtevent, e.evtfoid, e.evtenabled, e.evttags INTO existing FROM pg_catalog.pg_event_trigger e WHERE e.evtname = 'pgx_tenant_partitions';
    IF NOT FOUND THEN
        -- Event triggers need a superuser: without one, later partitions would not be isolated.
        BEGIN
            CREATE EVENT TRIGGER pgx_tenant_partitions ON ddl_command_end
                WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
                EXECUTE FUNCTION pgx.tenant_new_partitions();
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE EXCEPTION 'partitions created later would not be isolated: creating event trigger % needs a superuser; run this migration as one', 'pgx_tenant_partitions';
        END;
    ELSIF existing.evtevent <> 'ddl_command_end' OR existing.evtfoid <> 'pgx.tenant_new_partitions()'::regprocedure
          OR existing.evtenabled NOT IN ('O', 'A')
          OR (SELECT pg_catalog.array_agg(x ORDER BY x) FROM pg_catalog.unnest(existing.evttags) x) IS DISTINCT FROM ARRAY['ALTER TABLE', 'CREATE TABLE'] THEN
        RAISE EXCEPTION 'event trigger % is not pgx''s (ON ddl_command_end WHEN TAG IN (''CREATE TABLE'', ''ALTER TABLE'') EXECUTE FUNCTION %(), enabled): partitions created later would not be isolated',
            'pgx_tenant_partitions', 'pgx.tenant_new_partitions'
            USING HINT = pg_catalog.format('DROP EVENT TRIGGER %I, and run this migration again', 'pgx_tenant_partitions');
    END IF;
END
$pgx$;

-- What this migration promises, checked in the catalog before it commits.
DO $pgx$
DECLARE
    problem text;
BEGIN
    SELECT pg_catalog.string_agg(d.detail, '; ' ORDER BY d.kind, d.object) INTO problem
    FROM pgx.tenant_doors('public.events', 'tenant_id', ARRAY[]::name[]) d
    WHERE d.kind IN ('row_security', 'policy', 'partition_policy', 'index');
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'the isolation of % is incomplete: %', 'public.events', problem;
    END IF;
END
$pgx$;

-- The session's search_path again, for the runner's bookkeeping.
SELECT pg_catalog.set_config('search_path', pg_catalog.current_setting('pgx.search_path'), true);
