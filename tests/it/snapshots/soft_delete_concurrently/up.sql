-- pgx VERSION: pattern "soft_delete" (up)
-- step 1 of 4: "column"
-- table: "public"."users"
-- param column = "deleted_at"
-- param add_column = false
-- param deleted_by = null
-- param actor_setting = "app.user_id"
-- param actor_type = "bigint"
-- param intercept = false
-- param unique = ["none"]
-- param view = null
-- param hide = "none"
-- param role = null
-- param live_indexes = ["name","email"]
-- param concurrently = true
-- param soft_delete_schema = "soft_delete"
-- param lock_timeout = "100ms"

SET LOCAL lock_timeout = '100ms';

-- Checks before anything changes; each failure says what to do.
DO $pgx$
DECLARE
    tbl regclass := pg_catalog.to_regclass('public.users');
    rel record;
    col_type regtype;
    problem text;
BEGIN
    IF pg_catalog.to_regprocedure('soft_delete.on_update()') IS NULL THEN
        RAISE EXCEPTION 'the soft-delete infrastructure is not installed in schema %: apply its migration (pgx new soft_delete_install) first', 'soft_delete';
    ELSIF tbl IS NULL THEN
        RAISE EXCEPTION 'table % does not exist', 'public.users';
    END IF;
    SELECT c.relkind, c.relispartition, c.relowner, c.relrowsecurity, c.relforcerowsecurity INTO rel
    FROM pg_catalog.pg_class c WHERE c.oid = tbl;
    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', 'public.users';
    ELSIF rel.relispartition THEN
        RAISE EXCEPTION '% is a partition: make its partitioned table a soft-delete table instead', 'public.users';
    ELSIF soft_delete.config(tbl) IS NOT NULL THEN
        RAISE EXCEPTION '% is a soft-delete table already', 'public.users';
    ELSIF NOT EXISTS (SELECT FROM pg_catalog.pg_index i WHERE i.indrelid = tbl AND i.indisprimary) THEN
        RAISE EXCEPTION '% has no primary key: soft delete finds rows by it (to mark, cascade and restore them); add one first', 'public.users';
    END IF;

    -- Fails on a name PostgreSQL would not accept as a custom setting. Local to this statement.
    PERFORM pg_catalog.set_config('app.user_id', '', true);

    SELECT a.atttypid INTO col_type FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = tbl AND a.attname = 'deleted_at' AND a.attnum > 0 AND NOT a.attisdropped;
    IF col_type IS NULL THEN
        RAISE EXCEPTION '% has no column %: render without --set add_column=false to add it', 'public.users', 'deleted_at';
    ELSIF col_type <> 'pg_catalog.timestamptz'::regtype THEN
        RAISE EXCEPTION '%.% is %, not timestamp with time zone', 'public.users', 'deleted_at', col_type;
    END IF;
    IF pg_catalog.to_regclass('public.users_live') IS NOT NULL THEN
        RAISE EXCEPTION '% exists already: drop it, or name the view of live rows with --set view=<name>', 'public.users_live';
    END IF;
    IF rel.relkind = 'p' THEN
        RAISE EXCEPTION '% is partitioned, and PostgreSQL cannot build an index on it concurrently: render without --set concurrently=true', 'public.users';
    END IF;
END
$pgx$;
-- no-transaction
-- pgx VERSION: pattern "soft_delete" (up)
-- step 2 of 4: "live_index_1"
-- table: "public"."users"
-- param column = "deleted_at"
-- param add_column = false
-- param deleted_by = null
-- param actor_setting = "app.user_id"
-- param actor_type = "bigint"
-- param intercept = false
-- param unique = ["none"]
-- param view = null
-- param hide = "none"
-- param role = null
-- param live_indexes = ["name","email"]
-- param concurrently = true
-- param soft_delete_schema = "soft_delete"
-- param lock_timeout = "100ms"
-- Runs outside a transaction: each statement commits on its own.

CREATE INDEX CONCURRENTLY users_name_live_idx ON public.users (name) WHERE deleted_at IS NULL;
-- no-transaction
-- pgx VERSION: pattern "soft_delete" (up)
-- step 3 of 4: "live_index_2"
-- table: "public"."users"
-- param column = "deleted_at"
-- param add_column = false
-- param deleted_by = null
-- param actor_setting = "app.user_id"
-- param actor_type = "bigint"
-- param intercept = false
-- param unique = ["none"]
-- param view = null
-- param hide = "none"
-- param role = null
-- param live_indexes = ["name","email"]
-- param concurrently = true
-- param soft_delete_schema = "soft_delete"
-- param lock_timeout = "100ms"
-- Runs outside a transaction: each statement commits on its own.

CREATE INDEX CONCURRENTLY users_email_live_idx ON public.users (email) WHERE deleted_at IS NULL;
-- pgx VERSION: pattern "soft_delete" (up)
-- step 4 of 4: "soft_delete"
-- table: "public"."users"
-- param column = "deleted_at"
-- param add_column = false
-- param deleted_by = null
-- param actor_setting = "app.user_id"
-- param actor_type = "bigint"
-- param intercept = false
-- param unique = ["none"]
-- param view = null
-- param hide = "none"
-- param role = null
-- param live_indexes = ["name","email"]
-- param concurrently = true
-- param soft_delete_schema = "soft_delete"
-- param lock_timeout = "100ms"

SET LOCAL lock_timeout = '100ms';

-- The table's configuration travels in the trigger's arguments (read by the shared functions):
-- column, deleted-by column, actor setting, actor type, counting view. The trigger is named so
-- it fires after the audit pattern's AFTER UPDATE trigger: a parent's change is logged before
-- the changes its cascade makes.
CREATE TRIGGER soft_delete_cascade
    AFTER UPDATE ON public.users
    REFERENCING OLD TABLE AS pgx_old NEW TABLE AS pgx_new
    FOR EACH STATEMENT EXECUTE FUNCTION soft_delete.on_update('deleted_at', '', 'app.user_id', 'bigint', '');

-- The live rows, with the row security of whoever reads them; updatable. It has the table's
-- grants for SELECT, INSERT, UPDATE and DELETE.
DO $pgx$
DECLARE
    tbl regclass := 'public.users'::regclass;
    grant_rec record;
BEGIN
    EXECUTE pg_catalog.format('CREATE VIEW %s WITH (security_invoker = true) AS SELECT %s FROM %s WHERE %I IS NULL',
        'public.users_live',
        (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)
         FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped
           AND a.attname NOT IN ('deleted_at')),
        tbl, 'deleted_at');
    FOR grant_rec IN
        SELECT CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(r.rolname) END AS grantee, g.privilege_type
        FROM pg_catalog.pg_class c
        CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) g
        LEFT JOIN pg_catalog.pg_roles r ON r.oid = g.grantee
        WHERE c.oid = tbl AND g.grantee <> c.relowner AND g.privilege_type IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE')
    LOOP
        EXECUTE pg_catalog.format('GRANT %s ON %s TO %s', grant_rec.privilege_type, 'public.users_live', grant_rec.grantee);
    END LOOP;
END
$pgx$;

-- <table>_restore(primary key) restores a soft-deleted row and the rows its delete cascaded to;
-- false when there is no such row the caller can see. It runs with the caller's rights.
DO $pgx$
BEGIN
    EXECUTE pg_catalog.format(
        'CREATE FUNCTION %s(%s) RETURNS boolean LANGUAGE sql SET search_path = pg_catalog, pg_temp '
        'BEGIN ATOMIC WITH restored AS (UPDATE %s pgx_t SET %I = NULL WHERE %s AND pgx_t.%I IS NOT NULL RETURNING 1) '
        'SELECT EXISTS (SELECT FROM restored); END',
        'public.users_restore',
        (SELECT pg_catalog.string_agg(pg_catalog.format('%I %s', k.name, k.type), ', ' ORDER BY k.ord) FROM soft_delete.key_columns('public.users'::regclass) k),
        'public.users', 'deleted_at',
        (SELECT pg_catalog.string_agg(pg_catalog.format('pgx_t.%I %s $%s', k.name, k.eq, k.ord), ' AND ' ORDER BY k.ord) FROM soft_delete.key_columns('public.users'::regclass) k),
        'deleted_at');
END
$pgx$;

-- <table>_purge(older_than, batch_size) hard-deletes one batch of rows soft-deleted longer ago
-- than older_than and returns how many; call it until it returns 0. Only the table's owner can.
CREATE FUNCTION public.users_purge(older_than interval, batch_size integer DEFAULT 1000) RETURNS bigint
    LANGUAGE sql
    SET search_path = pg_catalog, pg_temp
RETURN soft_delete.purge('public.users'::pg_catalog.regclass, older_than, batch_size);
