-- pgx 0.1.0: pattern "tenant" (down)
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

DROP POLICY events_tenant_access ON public.events;
DROP POLICY events_tenant_isolation ON public.events;

-- What the up migration changed comes back, rebuilt from the data it recorded in pgx's
-- registry (which only the migrating role can write); no stored SQL text is run.
DO $pgx$
DECLARE
    tbl regclass := 'public.events';
    reg record;
    rec record;
BEGIN
    -- Forgotten first: from here on the event trigger leaves the table's partitions alone.
    DELETE FROM pgx.tenant_tables r WHERE r.relid = tbl RETURNING r.restore, r.saved_default INTO reg;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not in %: this migration''s up did not run here, or its record was removed', 'public.events', 'pgx.tenant_tables';
    END IF;

    -- Partitions lose the policies; those that had row security before keep it.
    FOR rec IN
        SELECT t.relid::regclass AS relid, coalesce(p.row_security, false) AS row_security,
               coalesce(p.force_row_security, false) AS force_row_security
        FROM pg_catalog.pg_partition_tree(tbl) t
        JOIN pg_catalog.pg_class c ON c.oid = t.relid
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_catalog.jsonb_to_recordset(coalesce(reg.restore -> 'partitions', '[]'))
            AS p(schema name, name name, row_security boolean, force_row_security boolean)
            ON p.schema = n.nspname AND p.name = c.relname
        WHERE t.relid <> tbl
    LOOP
        EXECUTE pg_catalog.format('DROP POLICY IF EXISTS %I ON %s', 'events_tenant_access', rec.relid);
        EXECUTE pg_catalog.format('DROP POLICY IF EXISTS %I ON %s', 'events_tenant_isolation', rec.relid);
        EXECUTE pg_catalog.format('ALTER TABLE %s %s ROW LEVEL SECURITY, %s ROW LEVEL SECURITY', rec.relid,
            CASE WHEN rec.row_security THEN 'ENABLE' ELSE 'DISABLE' END,
            CASE WHEN rec.force_row_security THEN 'FORCE' ELSE 'NO FORCE' END);
    END LOOP;
    -- The event trigger goes with the last partitioned table.
    IF NOT EXISTS (SELECT FROM pgx.tenant_tables r WHERE r.partitions) THEN
        DROP EVENT TRIGGER IF EXISTS pgx_tenant_partitions;
    END IF;
    IF coalesce((reg.restore ->> 'index_created')::boolean, false) THEN
        DROP INDEX public.events_tenant_id_idx;
    END IF;
    EXECUTE pg_catalog.format('ALTER TABLE %s %s ROW LEVEL SECURITY, %s ROW LEVEL SECURITY', tbl,
        CASE WHEN coalesce((reg.restore ->> 'row_security')::boolean, false) THEN 'ENABLE' ELSE 'DISABLE' END,
        CASE WHEN coalesce((reg.restore ->> 'force_row_security')::boolean, false) THEN 'FORCE' ELSE 'NO FORCE' END);
END
$pgx$;

ALTER TABLE public.events DROP COLUMN tenant_id;

DROP FUNCTION public.events_current_tenant();

-- The session's search_path again, for the runner's bookkeeping.
SELECT pg_catalog.set_config('search_path', pg_catalog.current_setting('pgx.search_path'), true);
