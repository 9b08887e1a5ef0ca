-- pgx VERSION: pattern "soft_delete" (down)
-- table: "public"."users"
-- param column = "deleted_at"
-- param add_column = true
-- param deleted_by = null
-- param actor_setting = "app.user_id"
-- param actor_type = "bigint"
-- param intercept = true
-- param unique = ["all"]
-- param view = null
-- param hide = "none"
-- param role = null
-- param live_indexes = []
-- param concurrently = false
-- param soft_delete_schema = "soft_delete"
-- param lock_timeout = "100ms"

SET LOCAL lock_timeout = '100ms';

DROP FUNCTION public.users_purge(interval, integer);
DROP FUNCTION public.users_restore;
DROP VIEW public.users_live;
DROP RULE soft_delete ON public.users;
DROP VIEW public.users_soft_delete;
DROP TRIGGER soft_delete_guard ON public.users;
DROP TRIGGER soft_delete_cascade ON public.users;

-- The unique constraints and indexes the up migration replaced, rebuilt from their partial
-- replacements; refused when soft-deleted rows duplicate live ones.
DO $pgx$
DECLARE
    tbl regclass := 'public.users'::regclass;
    nsp name := (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = 'public.users'::regclass);
    live text := pg_catalog.format('(%I IS NULL)', 'deleted_at');
    rec record;
    def text;
    pred text;
    tmp text;
    detail text;
BEGIN
    FOR rec IN
        SELECT ic.relname::text AS name, i.indexrelid::regclass AS index, i.indexrelid, i.indnkeyatts, i.indnullsnotdistinct,
               ic.reloptions, ic.reltablespace, pg_catalog.obj_description(i.indexrelid, 'pg_class')::jsonb AS state,
               pg_catalog.pg_get_indexdef(i.indexrelid) AS def, pg_catalog.pg_get_expr(i.indpred, i.indrelid) AS pred,
               (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.ord)
                FROM pg_catalog.unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                JOIN pg_catalog.pg_attribute a ON a.attrelid = tbl AND a.attnum = k.attnum WHERE k.ord <= i.indnkeyatts) AS key_columns,
               (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.ord)
                FROM pg_catalog.unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                JOIN pg_catalog.pg_attribute a ON a.attrelid = tbl AND a.attnum = k.attnum WHERE k.ord > i.indnkeyatts) AS include_columns
        FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
        WHERE i.indrelid = tbl AND pg_catalog.obj_description(i.indexrelid, 'pg_class') LIKE '{"comment": %'
          AND pg_catalog.obj_description(i.indexrelid, 'pg_class')::jsonb ? 'pgx soft_delete replaced'
        ORDER BY ic.relname
    LOOP
        -- The predicate without the live-rows condition the up migration added.
        IF rec.pred = live THEN
            pred := NULL;
        ELSIF pg_catalog.right(rec.pred, pg_catalog.length(live) + 6) = ' AND ' || live || ')' THEN
            pred := '(' || pg_catalog.substr(rec.pred, 2, pg_catalog.length(rec.pred) - pg_catalog.length(live) - 7) || ')';
        ELSE
            RAISE EXCEPTION 'cannot restore unique index %: its predicate % no longer ends with %', rec.name, rec.pred, live;
        END IF;
        BEGIN
            IF rec.state ->> 'pgx soft_delete replaced' = 'constraint' THEN
                EXECUTE pg_catalog.format('DROP INDEX %s', rec.index);
                EXECUTE pg_catalog.format('ALTER TABLE %s ADD CONSTRAINT %I UNIQUE%s (%s)%s%s%s', tbl, rec.name,
                    CASE WHEN rec.indnullsnotdistinct THEN ' NULLS NOT DISTINCT' ELSE '' END,
                    rec.key_columns, coalesce(' INCLUDE (' || rec.include_columns || ')', ''),
                    CASE WHEN rec.reloptions IS NULL THEN '' ELSE ' WITH (' || pg_catalog.array_to_string(rec.reloptions, ', ') || ')' END,
                    CASE WHEN rec.reltablespace = 0 THEN '' ELSE pg_catalog.format(' USING INDEX TABLESPACE %I', (SELECT s.spcname FROM pg_catalog.pg_tablespace s WHERE s.oid = rec.reltablespace)) END);
                IF rec.state ->> 'comment' IS NOT NULL THEN
                    EXECUTE pg_catalog.format('COMMENT ON CONSTRAINT %I ON %s IS %L', rec.name, tbl, rec.state ->> 'comment');
                END IF;
            ELSE
                tmp := 'pgx_soft_delete_' || rec.indexrelid::text;
                def := 'CREATE UNIQUE INDEX ' || tmp || pg_catalog.substr(rec.def, pg_catalog.length('CREATE UNIQUE INDEX ' || pg_catalog.quote_ident(rec.name)) + 1);
                def := pg_catalog.regexp_replace(def, '^(CREATE UNIQUE INDEX \S+ ON )ONLY ', '\1');
                def := pg_catalog.left(def, -(pg_catalog.length(rec.pred) + 7));
                IF rec.reltablespace <> 0 THEN
                    def := def || pg_catalog.format(' TABLESPACE %I', (SELECT s.spcname FROM pg_catalog.pg_tablespace s WHERE s.oid = rec.reltablespace));
                END IF;
                IF pred IS NOT NULL THEN
                    def := def || ' WHERE ' || pred;
                END IF;
                EXECUTE def;
                EXECUTE pg_catalog.format('DROP INDEX %s', rec.index);
                EXECUTE pg_catalog.format('ALTER INDEX %I.%I RENAME TO %I', nsp, tmp, rec.name);
                EXECUTE pg_catalog.format('COMMENT ON INDEX %I.%I IS %L', nsp, rec.name, rec.state ->> 'comment');
            END IF;
        EXCEPTION WHEN unique_violation THEN
            GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
            RAISE EXCEPTION 'cannot restore unique % % on %: soft-deleted rows duplicate live ones', rec.state ->> 'pgx soft_delete replaced', rec.name, 'public.users'
                USING ERRCODE = 'unique_violation', DETAIL = detail,
                      HINT = pg_catalog.format('purge the soft-deleted duplicates first (SELECT %s(''0'')), or change them', 'public.users_purge');
        END;
    END LOOP;
END
$pgx$;


-- Dropping the column would bring soft-deleted rows back to life.
DO $pgx$
DECLARE
    deleted bigint;
BEGIN
    SELECT pg_catalog.count(*) INTO deleted FROM public.users WHERE deleted_at IS NOT NULL;
    IF deleted > 0 THEN
        RAISE EXCEPTION '% has % soft-deleted row(s), which dropping % would bring back: purge them (SELECT %(''0'', %)) or restore them first',
            'public.users', deleted, 'deleted_at', 'public.users_purge', deleted;
    END IF;
END
$pgx$;

ALTER TABLE public.users
    DROP COLUMN deleted_at;
