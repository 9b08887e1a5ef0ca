-- pgx VERSION: pattern "soft_delete" (up)
-- table: "Sales Dept"."order's \"items\""
-- param column = "removed at"
-- param add_column = true
-- param deleted_by = "by$pgx$"
-- param actor_setting = "app.who"
-- param actor_type = "uuid"
-- param intercept = true
-- param unique = ["sku","Order Code"]
-- param view = "live; drop table x"
-- param hide = "policy"
-- param role = "App Role"
-- param live_indexes = ["sku"]
-- param concurrently = false
-- param soft_delete_schema = "Soft Delete"
-- param lock_timeout = "100ms"

SET LOCAL lock_timeout = '100ms';

-- Checks before anything changes; each failure says what to do.
DO $pgx1$
DECLARE
    tbl regclass := pg_catalog.to_regclass('"Sales Dept"."order''s ""items"""');
    rel record;
    col_type regtype;
    problem text;
BEGIN
    IF pg_catalog.to_regprocedure('"Soft Delete".on_update()') IS NULL THEN
        RAISE EXCEPTION 'the soft-delete infrastructure is not installed in schema %: apply its migration (pgx new soft_delete_install) first', 'Soft Delete';
    ELSIF tbl IS NULL THEN
        RAISE EXCEPTION 'table % does not exist', '"Sales Dept"."order''s ""items"""';
    END IF;
    SELECT c.relkind, c.relispartition, c.relowner, c.relrowsecurity, c.relforcerowsecurity INTO rel
    FROM pg_catalog.pg_class c WHERE c.oid = tbl;
    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', '"Sales Dept"."order''s ""items"""';
    ELSIF rel.relispartition THEN
        RAISE EXCEPTION '% is a partition: make its partitioned table a soft-delete table instead', '"Sales Dept"."order''s ""items"""';
    ELSIF "Soft Delete".config(tbl) IS NOT NULL THEN
        RAISE EXCEPTION '% is a soft-delete table already', '"Sales Dept"."order''s ""items"""';
    ELSIF NOT EXISTS (SELECT FROM pg_catalog.pg_index i WHERE i.indrelid = tbl AND i.indisprimary) THEN
        RAISE EXCEPTION '% has no primary key: soft delete finds rows by it (to mark, cascade and restore them); add one first', '"Sales Dept"."order''s ""items"""';
    END IF;

    -- Fails on a name PostgreSQL would not accept as a custom setting. Local to this statement.
    PERFORM pg_catalog.set_config('app.who', '', true);

    SELECT a.atttypid INTO col_type FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = tbl AND a.attname = 'removed at' AND a.attnum > 0 AND NOT a.attisdropped;
    IF col_type IS NOT NULL THEN
        RAISE EXCEPTION '% already has a column %: render with --set add_column=false to use it', '"Sales Dept"."order''s ""items"""', 'removed at';
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid = tbl AND a.attname = 'by$pgx$' AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION '% already has a column %', '"Sales Dept"."order''s ""items"""', 'by$pgx$';
    END IF;
    IF pg_catalog.to_regclass('"Sales Dept"."live; drop table x"') IS NOT NULL THEN
        RAISE EXCEPTION '% exists already: drop it, or name the view of live rows with --set view=<name>', '"Sales Dept"."live; drop table x"';
    END IF;
    IF pg_catalog.to_regclass('"Sales Dept"."order''s ""items""_soft_delete"') IS NOT NULL THEN
        RAISE EXCEPTION '% exists already, and soft delete needs that name for the view that counts deletes', '"Sales Dept"."order''s ""items""_soft_delete"';
    END IF;
    -- A DELETE becomes an UPDATE made through the table's rule, to which PostgreSQL applies the
    -- deleting role's SELECT policies, not its DELETE policies.
    SELECT pg_catalog.string_agg(p.polname::text, ', ') INTO problem
    FROM pg_catalog.pg_policy p WHERE p.polrelid = tbl AND p.polcmd = 'd';
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION '% has row-security policies for DELETE only (%), which a soft delete would not apply: make them FOR ALL (or SELECT), or render with --set intercept=false', '"Sales Dept"."order''s ""items"""', problem;
    END IF;
    IF pg_catalog.to_regrole('App Role') IS NULL THEN
        RAISE EXCEPTION 'role % does not exist', 'App Role';
    ELSIF EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname = 'App Role' AND (r.rolsuper OR r.rolbypassrls)) THEN
        RAISE EXCEPTION 'role % bypasses row security (superuser or BYPASSRLS): no policy can hide rows from it', 'App Role';
    ELSIF rel.relrowsecurity AND NOT rel.relforcerowsecurity AND pg_catalog.pg_has_role('App Role', rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'role % owns %, whose row security is not forced, so no policy applies to it: force it (ALTER TABLE % FORCE ROW LEVEL SECURITY) or hide rows from another role', 'App Role', '"Sales Dept"."order''s ""items"""', '"Sales Dept"."order''s ""items"""';
    END IF;
END
$pgx1$;

-- Nullable columns without a default: no table rewrite, only a brief ACCESS EXCLUSIVE lock.
ALTER TABLE "Sales Dept"."order's ""items"""
    ADD COLUMN "removed at" timestamptz,
    ADD COLUMN "by$pgx$" pg_catalog.uuid;

CREATE INDEX "order's ""items""_sku_live_idx" ON "Sales Dept"."order's ""items""" (sku) WHERE "removed at" IS NULL;

-- Uniqueness among live rows only: each unique constraint or index becomes a unique index WHERE
-- "removed at" IS NULL, under the same name. Its comment records what it replaced, for the down
-- migration.
DO $pgx$
DECLARE
    tbl regclass := '"Sales Dept"."order''s ""items"""'::regclass;
    nsp name := (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = '"Sales Dept"."order''s ""items"""'::regclass);
    wanted text[] := ARRAY['sku', 'Order Code']::text[];
    every boolean := ARRAY['sku', 'Order Code']::text[] OPERATOR(pg_catalog.=) '{all}';
    live text := pg_catalog.format('(%I IS NULL)', 'removed at');
    matched text[] := '{}';
    rec record;
    tmp text;
    def text;
BEGIN
    FOR rec IN
        SELECT ic.relname::text AS name, i.indexrelid::regclass AS index, i.indexrelid, k.oid AS con, k.condeferrable,
               i.indisvalid, ic.reltablespace, a.attname::text AS only_column,
               pg_catalog.pg_get_indexdef(i.indexrelid) AS def,
               pg_catalog.pg_get_expr(i.indpred, i.indrelid) AS pred,
               coalesce(pg_catalog.obj_description(k.oid, 'pg_constraint'), pg_catalog.obj_description(i.indexrelid, 'pg_class')) AS comment,
               (SELECT pg_catalog.string_agg(f.conrelid::regclass::text, ', ') FROM pg_catalog.pg_constraint f
                WHERE f.contype = 'f' AND f.conindid = i.indexrelid) AS referenced_by
        FROM pg_catalog.pg_index i
        JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
        LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = tbl AND a.attnum = i.indkey[0] AND i.indnkeyatts = 1
        LEFT JOIN pg_catalog.pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = tbl AND k.contype = 'u'
        WHERE i.indrelid = tbl AND i.indisunique AND NOT i.indisprimary
          AND (every OR ic.relname = ANY (wanted) OR a.attname = ANY (wanted))
        ORDER BY ic.relname
    LOOP
        matched := matched || rec.name || rec.only_column;
        CONTINUE WHEN rec.pred = live;
        IF rec.referenced_by IS NOT NULL THEN
            RAISE EXCEPTION 'cannot make % unique among live rows only: foreign keys of % reference it, and a foreign key needs a unique key over all rows', rec.name, rec.referenced_by
                USING HINT = 'leave it out: list the others with --set unique=...';
        ELSIF rec.condeferrable THEN
            RAISE EXCEPTION 'cannot make % unique among live rows only: it is DEFERRABLE, which a partial unique index cannot be', rec.name
                USING HINT = 'leave it out: list the others with --set unique=...';
        ELSIF NOT rec.indisvalid THEN
            RAISE EXCEPTION 'unique index % is not valid (an interrupted CREATE INDEX CONCURRENTLY?): drop or rebuild it first', rec.name;
        END IF;
        -- pg_get_indexdef: CREATE UNIQUE INDEX name ON [ONLY] table USING ... [WHERE pred]
        tmp := 'pgx_soft_delete_' || rec.indexrelid::text;
        def := 'CREATE UNIQUE INDEX ' || tmp || pg_catalog.substr(rec.def, pg_catalog.length('CREATE UNIQUE INDEX ' || pg_catalog.quote_ident(rec.name)) + 1);
        def := pg_catalog.regexp_replace(def, '^(CREATE UNIQUE INDEX \S+ ON )ONLY ', '\1');
        IF rec.pred IS NOT NULL THEN
            IF pg_catalog.right(def, pg_catalog.length(rec.pred) + 7) <> ' WHERE ' || rec.pred THEN
                RAISE EXCEPTION 'cannot read the definition of index %: %', rec.name, rec.def;
            END IF;
            def := pg_catalog.left(def, -(pg_catalog.length(rec.pred) + 7));
        END IF;
        IF rec.reltablespace <> 0 THEN
            def := def || pg_catalog.format(' TABLESPACE %I', (SELECT s.spcname FROM pg_catalog.pg_tablespace s WHERE s.oid = rec.reltablespace));
        END IF;
        def := def || ' WHERE ' || CASE WHEN rec.pred IS NULL THEN live ELSE pg_catalog.format('%s AND %s', rec.pred, live) END;
        EXECUTE def;
        IF rec.con IS NOT NULL THEN
            EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', tbl, rec.name);
        ELSE
            EXECUTE pg_catalog.format('DROP INDEX %s', rec.index);
        END IF;
        EXECUTE pg_catalog.format('ALTER INDEX %I.%I RENAME TO %I', nsp, tmp, rec.name);
        EXECUTE pg_catalog.format('COMMENT ON INDEX %I.%I IS %L', nsp, rec.name,
            pg_catalog.jsonb_build_object('pgx soft_delete replaced', CASE WHEN rec.con IS NULL THEN 'index' ELSE 'constraint' END,
                                          'comment', rec.comment)::text);
    END LOOP;
    IF NOT every THEN
        SELECT pg_catalog.string_agg(w, ', ') INTO def FROM pg_catalog.unnest(wanted) AS w WHERE w <> ALL (matched);
        IF def IS NOT NULL THEN
            RAISE EXCEPTION '% has no unique constraint or index named % (or on that single column)', '"Sales Dept"."order''s ""items"""', def
                USING HINT = (SELECT 'its unique indexes: ' || coalesce(pg_catalog.string_agg(ic.relname::text, ', '), 'none')
                              FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
                              WHERE i.indrelid = tbl AND i.indisunique AND NOT i.indisprimary);
        END IF;
    END IF;
END
$pgx$;

-- The table's configuration travels in the trigger's arguments (read by the shared functions):
-- column, deleted-by column, actor setting, actor type, counting view. The trigger is named so
-- it fires after the audit pattern's AFTER UPDATE trigger: a parent's change is logged before
-- the changes its cascade makes.
CREATE TRIGGER soft_delete_cascade
    AFTER UPDATE ON "Sales Dept"."order's ""items"""
    REFERENCING OLD TABLE AS pgx_old NEW TABLE AS pgx_new
    FOR EACH STATEMENT EXECUTE FUNCTION "Soft Delete".on_update('removed at', 'by$pgx$', 'app.who', 'uuid', 'order''s "items"_soft_delete');

-- DELETE marks rows instead of removing them (the rule soft_delete and its counting view).
CREATE TRIGGER soft_delete_guard
    BEFORE DELETE ON "Sales Dept"."order's ""items"""
    FOR EACH ROW EXECUTE FUNCTION "Soft Delete".guard();

SELECT "Soft Delete".intercept('"Sales Dept"."order''s ""items"""'::regclass);

-- The live rows, with the row security of whoever reads them; updatable. It has the table's
-- grants for SELECT, INSERT, UPDATE and DELETE.
DO $pgx1$
DECLARE
    tbl regclass := '"Sales Dept"."order''s ""items"""'::regclass;
    grant_rec record;
BEGIN
    EXECUTE pg_catalog.format('CREATE VIEW %s WITH (security_invoker = true) AS SELECT %s FROM %s WHERE %I IS NULL',
        '"Sales Dept"."live; drop table x"',
        (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)
         FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped
           AND a.attname NOT IN ('removed at', 'by$pgx$')),
        tbl, 'removed at');
    FOR grant_rec IN
        SELECT CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(r.rolname) END AS grantee, g.privilege_type
        FROM pg_catalog.pg_class c
        CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) g
        LEFT JOIN pg_catalog.pg_roles r ON r.oid = g.grantee
        WHERE c.oid = tbl AND g.grantee <> c.relowner AND g.privilege_type IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE')
    LOOP
        EXECUTE pg_catalog.format('GRANT %s ON %s TO %s', grant_rec.privilege_type, '"Sales Dept"."live; drop table x"', grant_rec.grantee);
    END LOOP;
END
$pgx1$;

-- <table>_restore(primary key) restores a soft-deleted row and the rows its delete cascaded to;
-- false when there is no such row the caller can see. It runs with the caller's rights.
DO $pgx1$
BEGIN
    EXECUTE pg_catalog.format(
        'CREATE FUNCTION %s(%s) RETURNS boolean LANGUAGE sql SET search_path = pg_catalog, pg_temp '
        'BEGIN ATOMIC WITH restored AS (UPDATE %s pgx_t SET %I = NULL, %I = NULL WHERE %s AND pgx_t.%I IS NOT NULL RETURNING 1) '
        'SELECT EXISTS (SELECT FROM restored); END',
        '"Sales Dept"."order''s ""items""_restore"',
        (SELECT pg_catalog.string_agg(pg_catalog.format('%I %s', k.name, k.type), ', ' ORDER BY k.ord) FROM "Soft Delete".key_columns('"Sales Dept"."order''s ""items"""'::regclass) k),
        '"Sales Dept"."order''s ""items"""', 'removed at', 'by$pgx$',
        (SELECT pg_catalog.string_agg(pg_catalog.format('pgx_t.%I %s $%s', k.name, k.eq, k.ord), ' AND ' ORDER BY k.ord) FROM "Soft Delete".key_columns('"Sales Dept"."order''s ""items"""'::regclass) k),
        'removed at');
END
$pgx1$;

-- <table>_purge(older_than, batch_size) hard-deletes one batch of rows soft-deleted longer ago
-- than older_than and returns how many; call it until it returns 0. Only the table's owner can.
CREATE FUNCTION "Sales Dept"."order's ""items""_purge"(older_than interval, batch_size integer DEFAULT 1000) RETURNS bigint
    LANGUAGE sql
    SET search_path = pg_catalog, pg_temp
RETURN "Soft Delete".purge('"Sales Dept"."order''s ""items"""'::pg_catalog.regclass, older_than, batch_size);

-- Soft-deleted rows are hidden from "App Role" by a RESTRICTIVE policy. Rows
-- deleted by the current statement stay visible: PostgreSQL checks the SELECT policies against
-- the new row of an UPDATE that reads the table (WHERE, RETURNING), the soft delete's own
-- UPDATE included.
DO $pgx$
DECLARE
    rel record;
BEGIN
    SELECT c.relrowsecurity, c.relforcerowsecurity, c.relowner INTO rel FROM pg_catalog.pg_class c WHERE c.oid = '"Sales Dept"."order''s ""items"""'::regclass;
    IF NOT rel.relrowsecurity THEN
        -- Row security was off: switch it on with a policy allowing what was allowed before.
        ALTER TABLE "Sales Dept"."order's ""items""" ENABLE ROW LEVEL SECURITY;
        CREATE POLICY "order's ""items""_soft_delete_access" ON "Sales Dept"."order's ""items""" AS PERMISSIVE FOR ALL TO PUBLIC USING (true) WITH CHECK (true);
        EXECUTE pg_catalog.format('COMMENT ON POLICY %I ON %s IS %L', 'order''s "items"_soft_delete_access', '"Sales Dept"."order''s ""items"""',
            pg_catalog.jsonb_build_object('pgx soft_delete', 'enabled row security', 'forced before', rel.relforcerowsecurity)::text);
        IF NOT rel.relforcerowsecurity AND pg_catalog.pg_has_role('App Role', rel.relowner, 'USAGE') THEN
            ALTER TABLE "Sales Dept"."order's ""items""" FORCE ROW LEVEL SECURITY;
        END IF;
    END IF;
END
$pgx$;

CREATE POLICY "order's ""items""_hide_deleted" ON "Sales Dept"."order's ""items""" AS RESTRICTIVE FOR SELECT TO "App Role"
    USING ("removed at" IS NULL OR "removed at" OPERATOR(pg_catalog.>=) pg_catalog.statement_timestamp());
