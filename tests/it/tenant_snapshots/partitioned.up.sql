-- pgx 0.1.0: pattern "tenant" (up)
-- table: "public"."events"
-- param column = "tenant_id"
-- param type = "integer"
-- param setting = "app.current_tenant"
-- param add_column = true
-- param backfill = null
-- param references = null
-- param role = null
-- param unique = null
-- param partitioned = true
-- param view = null
-- param secure_views = false
-- param concurrently = false
-- param distribute = "none"
-- param lock_timeout = "5s"

SET LOCAL lock_timeout = '5s';

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

    -- Fails on a name PostgreSQL would not accept as a custom setting. Local to this statement.
    PERFORM pg_catalog.set_config('app.current_tenant', '', true);

    SELECT a.atttypid INTO col_type FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = tbl AND a.attname = 'tenant_id' AND a.attnum > 0 AND NOT a.attisdropped;
    IF col_type IS NOT NULL THEN
        RAISE EXCEPTION '% already has a column %: render this migration with --set add_column=false to use it', 'public.events', 'tenant_id';
    END IF;
    IF col_type IS NULL AND EXISTS (SELECT FROM public.events) THEN
        RAISE EXCEPTION '% has rows, and this migration has no tenant to give them: render it with --set backfill=<tenant id> to give them all one tenant, or add and fill the column yourself and render it with --set add_column=false', 'public.events'
            USING HINT = pg_catalog.format('ALTER TABLE %s ADD COLUMN %I %s; UPDATE %s SET %I = ...', 'public.events', 'tenant_id', 'int4'::regtype, 'public.events', 'tenant_id');
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
        RAISE EXCEPTION 'view(s) % read % with their owner''s rights: recreate them WITH (security_invoker = true), or render with --set secure_views=true to switch them', problem, 'public.events';
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

-- What is there before this migration changes it, for the down migration.
DO $pgx$
DECLARE
    tbl regclass := 'public.events';
    state jsonb;
BEGIN
    SELECT pg_catalog.jsonb_build_object('row_security', c.relrowsecurity, 'force_row_security', c.relforcerowsecurity)
    INTO state FROM pg_catalog.pg_class c WHERE c.oid = tbl;
    EXECUTE pg_catalog.format('COMMENT ON FUNCTION %s IS %L', 'public.events_current_tenant()'::regprocedure, state);
END
$pgx$;

-- The tenant column: NOT NULL, defaulting to the current tenant.
ALTER TABLE public.events ADD COLUMN tenant_id int4 NOT NULL DEFAULT public.events_current_tenant();

-- An index led by the tenant column serves every query through the policy.
DO $pgx$
DECLARE
    tbl regclass := 'public.events';
    fn regprocedure := 'public.events_current_tenant()';
    state jsonb := pg_catalog.obj_description('public.events_current_tenant()'::regprocedure, 'pg_proc')::jsonb;
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
    EXECUTE pg_catalog.format('COMMENT ON FUNCTION %s IS %L', fn, state);
END
$pgx$;

-- Row security, forced so that the table's owner is confined as well. Isolation is
-- RESTRICTIVE: no permissive policy added later can widen it. The second policy grants what
-- isolation allows; to narrow further, add RESTRICTIVE policies (or replace it).
ALTER TABLE public.events ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY events_tenant_isolation ON public.events AS RESTRICTIVE FOR ALL TO PUBLIC
    USING (tenant_id = (SELECT public.events_current_tenant()))
    WITH CHECK (tenant_id = (SELECT public.events_current_tenant()));

CREATE POLICY events_tenant_access ON public.events AS PERMISSIVE FOR ALL TO PUBLIC
    USING (true)
    WITH CHECK (true);

-- A partition queried directly is checked against its own policies, not its parent's: give
-- every partition the same forced policies.
CREATE FUNCTION public.events_isolate_partition(partition regclass) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $pgx$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = partition AND c.relrowsecurity AND c.relforcerowsecurity) THEN
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', partition);
    END IF;
    -- A table attached as a partition keeps its own default: new rows need the tenant's.
    IF NOT EXISTS (SELECT FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
                   WHERE d.adrelid = partition AND a.attname = 'tenant_id') THEN
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s()', partition, 'tenant_id', 'public.events_current_tenant');
    END IF;
    IF NOT EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = partition AND p.polname = 'events_tenant_isolation') THEN
        EXECUTE format('CREATE POLICY %I ON %s AS RESTRICTIVE FOR ALL TO PUBLIC USING (%s) WITH CHECK (%s)',
                       'events_tenant_isolation', partition, 'tenant_id = (SELECT public.events_current_tenant())', 'tenant_id = (SELECT public.events_current_tenant())');
    END IF;
    IF NOT EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = partition AND p.polname = 'events_tenant_access') THEN
        EXECUTE format('CREATE POLICY %I ON %s AS PERMISSIVE FOR ALL TO PUBLIC USING (true) WITH CHECK (true)',
                       'events_tenant_access', partition);
    END IF;
END
$pgx$;

-- Partitions created or attached later get them from this event trigger. It acts on the tree
-- whose root carries the isolation policy (so it survives renaming the table); an ALTER TABLE
-- on a partition itself is left alone, so a deliberate change there is not undone.
CREATE FUNCTION public.events_isolate_new_partitions() RETURNS event_trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $pgx$
DECLARE
    command record;
    partition regclass;
BEGIN
    FOR command IN
        SELECT c.objid, c.command_tag FROM pg_event_trigger_ddl_commands() c
        WHERE c.object_type = 'table'
          AND EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = pg_partition_root(c.objid) AND p.polname = 'events_tenant_isolation')
    LOOP
        FOR partition IN
            SELECT t.relid FROM pg_partition_tree(command.objid) t
            WHERE t.relid <> pg_partition_root(command.objid)
              AND (command.command_tag = 'CREATE TABLE' OR t.relid <> command.objid)
        LOOP
            PERFORM public.events_isolate_partition(partition);
        END LOOP;
    END LOOP;
END
$pgx$;

DO $pgx$
DECLARE
    state jsonb := pg_catalog.obj_description('public.events_current_tenant()'::regprocedure, 'pg_proc')::jsonb;
    part record;
BEGIN
    -- Partitions that had row security before keep it after the down migration.
    state := state || '{"partitions_with_row_security": {}}';
    FOR part IN
        SELECT t.relid::regclass AS relid, pg_catalog.format('%I.%I', n.nspname, c.relname) AS name,
               c.relrowsecurity, c.relforcerowsecurity
        FROM pg_catalog.pg_partition_tree('public.events') t
        JOIN pg_catalog.pg_class c ON c.oid = t.relid
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE t.relid <> 'public.events'::regclass
    LOOP
        IF part.relrowsecurity OR part.relforcerowsecurity THEN
            state := pg_catalog.jsonb_set(state, ARRAY['partitions_with_row_security', part.name],
                pg_catalog.jsonb_build_array(part.relrowsecurity, part.relforcerowsecurity));
        END IF;
        PERFORM public.events_isolate_partition(part.relid);
    END LOOP;
    EXECUTE pg_catalog.format('COMMENT ON FUNCTION %s IS %L', 'public.events_current_tenant()'::regprocedure, state);
    -- Event triggers need a superuser: without one, later partitions would not be isolated.
    BEGIN
        CREATE EVENT TRIGGER public_events_isolate_new_partitions ON ddl_command_end
            WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
            EXECUTE FUNCTION public.events_isolate_new_partitions();
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE EXCEPTION 'partitions created later would not be isolated: creating event trigger % needs a superuser; run this migration as one', 'public_events_isolate_new_partitions';
    END;
END
$pgx$;
