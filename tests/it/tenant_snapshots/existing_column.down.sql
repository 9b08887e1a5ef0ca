-- pgx 0.1.0: pattern "tenant" (down)
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

DROP VIEW public.my_orders;

DROP POLICY orders_tenant_access ON public.orders;
DROP POLICY orders_tenant_isolation ON public.orders;
ALTER TABLE public.orders DROP CONSTRAINT orders_tenant_id_email_key;
ALTER TABLE public.orders DROP CONSTRAINT "orders_tenant_id_Code_key";
ALTER TABLE public.orders DROP CONSTRAINT orders_tenant_id_fkey;

-- What the up migration changed comes back, rebuilt from the data it recorded in pgx's
-- registry (which only the migrating role can write); no stored SQL text is run.
DO $pgx$
DECLARE
    tbl regclass := 'public.orders';
    reg record;
    rec record;
    prior text;
BEGIN
    -- Forgotten first: from here on the event trigger leaves the table's partitions alone.
    DELETE FROM pgx.tenant_tables r WHERE r.relid = tbl RETURNING r.restore, r.saved_default INTO reg;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not in %: this migration''s up did not run here, or its record was removed', 'public.orders', 'pgx.tenant_tables';
    END IF;

    -- Foreign keys as they were, then the keys created for them.
    FOR rec IN SELECT f.value AS fk FROM pg_catalog.jsonb_array_elements(coalesce(reg.restore -> 'foreign_keys', '[]')) f LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %I.%I DROP CONSTRAINT %I', rec.fk ->> 'schema', rec.fk ->> 'table', rec.fk ->> 'name');
        PERFORM pgx.tenant_create_foreign_key(rec.fk);
    END LOOP;
    FOR rec IN SELECT * FROM pg_catalog.jsonb_to_recordset(coalesce(reg.restore -> 'created_keys', '[]')) AS k(schema name, "table" name, name name) LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %I.%I DROP CONSTRAINT %I', rec.schema, rec."table", rec.name);
    END LOOP;

    -- Uniqueness across tenants comes back as it was.
    FOR rec IN SELECT k.value AS key FROM pg_catalog.jsonb_array_elements(coalesce(reg.restore -> 'replaced', '[]')) k LOOP
        PERFORM pgx.tenant_create_key(rec.key);
    END LOOP;
    IF coalesce((reg.restore ->> 'index_created')::boolean, false) THEN
        DROP INDEX public.orders_tenant_id_idx;
    END IF;
    FOR rec IN SELECT * FROM pg_catalog.jsonb_to_recordset(coalesce(reg.restore -> 'secured_views', '[]')) AS v(schema name, name name) LOOP
        EXECUTE pg_catalog.format('ALTER VIEW %I.%I RESET (security_invoker)', rec.schema, rec.name);
    END LOOP;
    -- Privileges the role held before this migration stay.
    FOR rec IN
        SELECT p.privilege FROM pg_catalog.unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p(privilege)
        WHERE NOT coalesce(reg.restore -> 'privileges_held', '[]') ? p.privilege
    LOOP
        EXECUTE pg_catalog.format('REVOKE %s ON %s FROM %I', rec.privilege, tbl, 'app');
    END LOOP;
    EXECUTE pg_catalog.format('ALTER TABLE %s %s ROW LEVEL SECURITY, %s ROW LEVEL SECURITY', tbl,
        CASE WHEN coalesce((reg.restore ->> 'row_security')::boolean, false) THEN 'ENABLE' ELSE 'DISABLE' END,
        CASE WHEN coalesce((reg.restore ->> 'force_row_security')::boolean, false) THEN 'FORCE' ELSE 'NO FORCE' END);
    -- The column's default and nullability as they were; the default comes back from the
    -- table in pgx's schema that kept it.
    IF reg.saved_default IS NOT NULL THEN
        SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) INTO STRICT prior FROM pg_catalog.pg_attrdef d WHERE d.adrelid = reg.saved_default;
        EXECUTE pg_catalog.format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s', tbl, 'tenant_id', prior);
        EXECUTE pg_catalog.format('DROP TABLE %s', reg.saved_default);
    ELSE
        ALTER TABLE public.orders ALTER COLUMN tenant_id DROP DEFAULT;
    END IF;
    IF NOT coalesce((reg.restore ->> 'column_not_null')::boolean, true) THEN
        ALTER TABLE public.orders ALTER COLUMN tenant_id DROP NOT NULL;
    END IF;
END
$pgx$;

DROP FUNCTION public.orders_current_tenant();

-- The session's search_path again, for the runner's bookkeeping.
SELECT pg_catalog.set_config('search_path', pg_catalog.current_setting('pgx.search_path'), true);
