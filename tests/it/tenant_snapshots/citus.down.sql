-- pgx 0.1.0: pattern "tenant" (down)
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

-- Citus: the policy goes, and row security is off, before the table is undistributed: run by
-- its owner under FORCE, undistribute_table would copy back only the rows that role can see.
-- (The restore below switches row security back to what it was before the up migration.)
DROP POLICY orders_tenant_isolation ON public.orders;
ALTER TABLE public.orders NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY;

-- undistribute_table re-creates the table and the views over it, dropping the comments and
-- column privileges of the table and the privileges on the views: they are read first and put
-- back. It must keep every row, or nothing happens.
DO $pgx$
DECLARE
    table_comment text;
    column_comments jsonb;
    column_grants jsonb;
    view_grants jsonb;
    rows_before bigint;
    rows_after bigint;
    distributed regclass := 'public.orders'::regclass;
    rec record;
BEGIN
    table_comment := pg_catalog.obj_description('public.orders'::regclass, 'pg_class');
    SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('column', a.attname, 'comment', pg_catalog.col_description(a.attrelid, a.attnum)))
    INTO column_comments
    FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = 'public.orders'::regclass AND a.attnum > 0 AND NOT a.attisdropped AND pg_catalog.col_description(a.attrelid, a.attnum) IS NOT NULL;
    SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('column', a.attname, 'grantee', x.grantee,
               'privilege', x.privilege_type, 'grantable', x.is_grantable))
    INTO column_grants
    FROM pg_catalog.pg_attribute a, pg_catalog.aclexplode(a.attacl) x
    WHERE a.attrelid = 'public.orders'::regclass AND a.attnum > 0 AND NOT a.attisdropped;
    WITH RECURSIVE dependent(oid) AS (
        SELECT r.ev_class FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
        WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.refobjid = 'public.orders'::regclass AND r.ev_class <> 'public.orders'::regclass
        UNION
        SELECT r.ev_class FROM dependent JOIN pg_catalog.pg_depend d ON d.refobjid = dependent.oid
        JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
        WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass AND r.ev_class <> dependent.oid
    )
    SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('schema', n.nspname, 'name', c.relname, 'grantee', x.grantee,
               'privilege', x.privilege_type, 'grantable', x.is_grantable))
    INTO view_grants
    FROM dependent
    JOIN pg_catalog.pg_class c ON c.oid = dependent.oid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace,
    pg_catalog.aclexplode(c.relacl) x
    WHERE x.grantee <> c.relowner;

    SELECT pg_catalog.count(*) INTO rows_before FROM public.orders;
    PERFORM pg_catalog.undistribute_table('public.orders');
    SELECT pg_catalog.count(*) INTO rows_after FROM public.orders;
    IF rows_after <> rows_before THEN
        RAISE EXCEPTION 'undistribute_table(%) kept % of % rows: refusing to lose rows; nothing is changed', 'public.orders', rows_after, rows_before
            USING HINT = 'run the down migration as a superuser, or as the table''s owner with every row visible to it';
    END IF;
    -- The local table is a new relation: the registry follows it.
    UPDATE pgx.tenant_tables r SET relid = 'public.orders'::regclass WHERE r.relid = distributed;

    IF table_comment IS NOT NULL THEN
        EXECUTE pg_catalog.format('COMMENT ON TABLE %s IS %L', 'public.orders'::regclass, table_comment);
    END IF;
    FOR rec IN SELECT * FROM pg_catalog.jsonb_to_recordset(coalesce(column_comments, '[]')) AS x("column" name, comment text) LOOP
        EXECUTE pg_catalog.format('COMMENT ON COLUMN %s.%I IS %L', 'public.orders'::regclass, rec."column", rec.comment);
    END LOOP;
    FOR rec IN SELECT * FROM pg_catalog.jsonb_to_recordset(coalesce(column_grants, '[]'))
                   AS x("column" name, grantee oid, privilege text, grantable boolean) LOOP
        EXECUTE pg_catalog.format('GRANT %s (%I) ON %s TO %s%s', rec.privilege, rec."column", 'public.orders'::regclass,
            CASE WHEN rec.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(rec.grantee)) END,
            CASE WHEN rec.grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
    FOR rec IN SELECT * FROM pg_catalog.jsonb_to_recordset(coalesce(view_grants, '[]'))
                   AS x(schema name, name name, grantee oid, privilege text, grantable boolean) LOOP
        EXECUTE pg_catalog.format('GRANT %s ON %I.%I TO %s%s', rec.privilege, rec.schema, rec.name,
            CASE WHEN rec.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(rec.grantee)) END,
            CASE WHEN rec.grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END
$pgx$;
ALTER TABLE public.orders DROP CONSTRAINT orders_tenant_id_number_key;

-- What the up migration changed comes back, rebuilt from the data it recorded in pgx's
-- registry (which only the migrating role can write); no stored SQL text is run.
DO $pgx$
DECLARE
    tbl regclass := 'public.orders';
    reg record;
    rec record;
BEGIN
    -- Forgotten first: from here on the event trigger leaves the table's partitions alone.
    DELETE FROM pgx.tenant_tables r WHERE r.relid = tbl RETURNING r.restore, r.saved_default INTO reg;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not in %: this migration''s up did not run here, or its record was removed', 'public.orders', 'pgx.tenant_tables';
    END IF;

    -- Keys without the tenant column again.
    FOR rec IN SELECT k.value AS key FROM pg_catalog.jsonb_array_elements(coalesce(reg.restore -> 'rekeyed', '[]')) k LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', tbl, rec.key ->> 'name');
        PERFORM pgx.tenant_create_key(rec.key);
    END LOOP;

    -- Uniqueness across tenants comes back as it was.
    FOR rec IN SELECT k.value AS key FROM pg_catalog.jsonb_array_elements(coalesce(reg.restore -> 'replaced', '[]')) k LOOP
        PERFORM pgx.tenant_create_key(rec.key);
    END LOOP;
    IF coalesce((reg.restore ->> 'index_created')::boolean, false) THEN
        DROP INDEX public.orders_tenant_id_idx;
    END IF;
    EXECUTE pg_catalog.format('ALTER TABLE %s %s ROW LEVEL SECURITY, %s ROW LEVEL SECURITY', tbl,
        CASE WHEN coalesce((reg.restore ->> 'row_security')::boolean, false) THEN 'ENABLE' ELSE 'DISABLE' END,
        CASE WHEN coalesce((reg.restore ->> 'force_row_security')::boolean, false) THEN 'FORCE' ELSE 'NO FORCE' END);
END
$pgx$;

ALTER TABLE public.orders DROP COLUMN tenant_id;

DROP FUNCTION public.orders_current_tenant();

-- The session's search_path again, for the runner's bookkeeping.
SELECT pg_catalog.set_config('search_path', pg_catalog.current_setting('pgx.search_path'), true);
