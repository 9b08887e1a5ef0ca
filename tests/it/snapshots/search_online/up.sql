-- pgx VERSION: pattern "search" (up)
-- step 1 of 3: "column"
-- table: "public"."docs"
-- param columns = ["title:A","body"]
-- param config = {"name":"english","schema":null}
-- param config_column = "lang"
-- param unaccent = false
-- param column = "search"
-- param index = "gin"
-- param fastupdate = true
-- param tenant_column = "tenant_id"
-- param concurrently = false
-- param online = true
-- param batch_time = "50ms"
-- param rewrite_limit_mb = 100
-- param deleted_column = "deleted_at"
-- param headline_column = null
-- param headline_options = ""
-- param lock_timeout = "100ms"
-- param search_schema = "search"
-- param unaccent_configs = ["english"]
-- param leakproof = true

SET LOCAL lock_timeout = '100ms';

-- Checks before anything changes; each failure says what to do.
DO $pgx$
DECLARE
    tbl pg_catalog.regclass := 'public.docs';
    kind pg_catalog."char";
    missing pg_catalog.text;
    config_type pg_catalog.regtype;
    schema_owner pg_catalog.text;
    schema_owner_super boolean;
    writers pg_catalog.text;
BEGIN
    SELECT c.relkind INTO kind FROM pg_catalog.pg_class AS c WHERE c.oid OPERATOR(pg_catalog.=) tbl;
    IF kind IS NULL OR NOT kind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p']::pg_catalog."char"[]) THEN
        RAISE EXCEPTION '% is not a table', 'public.docs';
    END IF;
    IF kind OPERATOR(pg_catalog.=) 'p' THEN
        RAISE EXCEPTION '% is partitioned, and PostgreSQL cannot build an index on a partitioned table concurrently: render this migration without online', 'public.docs';
    END IF;

    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(u.name), ', ') INTO missing
      FROM pg_catalog.unnest(ARRAY['title', 'body', 'lang', 'tenant_id', 'deleted_at', 'body']::pg_catalog.text[]) AS u (name)
     WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                        WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) u.name
                          AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION '% has no column %', 'public.docs', missing;
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) 'search'
                  AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION '% already has a column %: render this migration with --set column=<another name>', 'public.docs', 'search';
    END IF;
    SELECT a.atttypid INTO config_type FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) 'lang';
    IF config_type OPERATOR(pg_catalog.<>) 'pg_catalog.regconfig'::pg_catalog.regtype THEN
        RAISE EXCEPTION '%.% is %, not regconfig: the vector must be immutable, and only a regconfig column makes it so', 'public.docs', 'lang', config_type
            USING HINT = pg_catalog.format('ALTER TABLE %s ALTER COLUMN %I TYPE regconfig USING %I::regconfig', 'public.docs', 'lang', 'lang');
    END IF;

    -- The configurations (and the leakproof operator) this migration names are resolved in the
    -- search schema: only the migrating role or a superuser may own or write it.
    SELECT r.rolname, r.rolsuper INTO schema_owner, schema_owner_super
      FROM pg_catalog.pg_namespace AS n JOIN pg_catalog.pg_roles AS r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
     WHERE n.nspname OPERATOR(pg_catalog.=) 'search';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the search infrastructure (schema %) is missing: apply its migration (pattern search_install) first', 'search';
    END IF;
    IF NOT schema_owner_super AND schema_owner OPERATOR(pg_catalog.<>) CURRENT_USER THEN
        RAISE EXCEPTION 'schema % belongs to role %: apply search migrations as that role (or a superuser)', 'search', schema_owner;
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.pg_get_userbyid(a.grantee)::pg_catalog.text, ', ') INTO writers
      FROM pg_catalog.pg_namespace AS n, pg_catalog.aclexplode(n.nspacl) AS a
     WHERE n.nspname OPERATOR(pg_catalog.=) 'search' AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'
       AND a.grantee OPERATOR(pg_catalog.<>) n.nspowner;
    IF writers IS NOT NULL THEN
        RAISE EXCEPTION 'schema % is writable by % too: revoke CREATE on it first', 'search', writers;
    END IF;
END
$pgx$;

-- A plain nullable column: adding it changes only the catalog (no rewrite). The trigger below
-- fills it for every row written from now on; the backfill migration fills the others.
ALTER TABLE public.docs ADD COLUMN search pg_catalog.tsvector;

-- The vector, as one immutable expression; the trigger and the backfill share it.
CREATE FUNCTION public.docs_search_vector(pg_catalog.text, pg_catalog.text, pg_catalog.regconfig)
    RETURNS pg_catalog.tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN pg_catalog.setweight(pg_catalog.to_tsvector($3, COALESCE($1, ''::pg_catalog.text)), 'A'::pg_catalog."char")
        OPERATOR(pg_catalog.||) pg_catalog.setweight(pg_catalog.to_tsvector($3, COALESCE($2, ''::pg_catalog.text)), 'D'::pg_catalog."char");

-- Recomputes the vector when a searched column changes, when the vector is missing, and when
-- a statement writes the vector itself (it stays derived data).
CREATE FUNCTION public.docs_search_update() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $pgx$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.search IS NULL OR NEW.search IS DISTINCT FROM OLD.search
       OR NEW.title::pg_catalog.text IS DISTINCT FROM OLD.title::pg_catalog.text
       OR NEW.body::pg_catalog.text IS DISTINCT FROM OLD.body::pg_catalog.text
       OR NEW.lang IS DISTINCT FROM OLD.lang THEN
        NEW.search := public.docs_search_vector(NEW.title::pg_catalog.text, NEW.body::pg_catalog.text, NEW.lang);
    END IF;
    RETURN NEW;
END
$pgx$;

REVOKE ALL ON FUNCTION public.docs_search_update() FROM PUBLIC;

CREATE TRIGGER docs_search
    BEFORE INSERT OR UPDATE ON public.docs
    FOR EACH ROW EXECUTE FUNCTION public.docs_search_update();

-- Fills the vector of rows written before the trigger existed, in committed batches of pages
-- taken in physical order (a TID range scan each). A batch's rows stay locked until it
-- commits: batches grow or shrink to take about batch_time each, commit included. Resumable: it
-- skips rows that have a vector. CALL it outside a transaction block. A batch that waits longer
-- than lock_timeout for a row lock is rolled back and tried again. Row security is off for
-- it, so that it fails instead of missing rows it cannot see.
CREATE PROCEDURE public.docs_search_backfill(batch_time pg_catalog.interval DEFAULT '50ms', lock_timeout pg_catalog.text DEFAULT '100ms')
    LANGUAGE plpgsql
AS $pgx$
DECLARE
    -- No SET clause (it would forbid COMMIT): every name below is qualified instead.
    tbl pg_catalog.regclass := 'public.docs'::pg_catalog.regclass;
    pages pg_catalog.int8;
    step pg_catalog.int8 := 1::pg_catalog.int8;
    first_page pg_catalog.int8 := 0::pg_catalog.int8;
    attempts pg_catalog.int4 := 0;
    started pg_catalog.timestamptz;
    took_ms pg_catalog.float8;
    target_ms pg_catalog.float8 := pg_catalog.date_part('epoch', batch_time) OPERATOR(pg_catalog.*) 1000;
BEGIN
    -- Rows written from now on get their vector from the trigger: the pages there are now are
    -- all there is to fill.
    pages := pg_catalog.pg_relation_size(tbl) OPERATOR(pg_catalog./) pg_catalog.current_setting('block_size')::pg_catalog.int8;
    WHILE first_page OPERATOR(pg_catalog.<) pages LOOP
        started := pg_catalog.clock_timestamp();
        BEGIN
            PERFORM pg_catalog.set_config('lock_timeout', lock_timeout, true);
            PERFORM pg_catalog.set_config('row_security', 'off', true);
            -- The trigger computes the vector of each row this touches.
            UPDATE public.docs AS t SET search = NULL
             WHERE t.ctid OPERATOR(pg_catalog.>=) pg_catalog.format('(%s,0)', first_page)::pg_catalog.tid
               AND t.ctid OPERATOR(pg_catalog.<) pg_catalog.format('(%s,0)', first_page OPERATOR(pg_catalog.+) step)::pg_catalog.tid
               AND t.search IS NULL;
            first_page := first_page OPERATOR(pg_catalog.+) step;
            attempts := 0;
        EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
            attempts := attempts OPERATOR(pg_catalog.+) 1;
            IF attempts OPERATOR(pg_catalog.>=) 10 THEN
                RAISE;
            END IF;
            PERFORM pg_catalog.pg_sleep(0.05 OPERATOR(pg_catalog.*) attempts);
        END;
        COMMIT;
        IF attempts OPERATOR(pg_catalog.=) 0 THEN
            took_ms := pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) started) OPERATOR(pg_catalog.*) 1000;
            -- At most twice as many pages as the last batch, so one slow page cannot lock many.
            step := GREATEST(1, LEAST(step OPERATOR(pg_catalog.*) 2,
                pg_catalog.floor(step OPERATOR(pg_catalog.*) target_ms OPERATOR(pg_catalog./) GREATEST(took_ms, 0.1))::pg_catalog.int8));
        END IF;
    END LOOP;
END
$pgx$;

REVOKE ALL ON PROCEDURE public.docs_search_backfill(pg_catalog.interval, pg_catalog.text) FROM PUBLIC;

-- Ranked search, best first: security invoker, so row security applies; websearch_to_tsquery
-- never fails on user input, and an empty or stop-word-only query matches no row.
CREATE FUNCTION public.docs_search(query pg_catalog.text, "limit" pg_catalog.int4 DEFAULT 10, "offset" pg_catalog.int4 DEFAULT 0, headline pg_catalog.bool DEFAULT false, config pg_catalog.regconfig DEFAULT 'pg_catalog.english')
    RETURNS TABLE (hit public.docs, rank pg_catalog.float4, snippet pg_catalog.text)
    LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    -- The query is parsed once for the ranking and the snippets (an InitPlan); the match is
    -- written out so that the planner sees a constant query when there is one. The matches are
    -- ranked by their row address alone; only the page of winners is read back whole (a TID
    -- scan each, in the same snapshot).
    SELECT t AS hit, h.rank,
           CASE WHEN docs_search.headline THEN pg_catalog.ts_headline(t.lang, t.body::pg_catalog.text, (SELECT pg_catalog.websearch_to_tsquery(docs_search.config, docs_search.query))) END
      FROM (SELECT m.tableoid AS rel, m.ctid AS row_id,
                   pg_catalog.ts_rank_cd(m.search, (SELECT pg_catalog.websearch_to_tsquery(docs_search.config, docs_search.query))) AS rank
              FROM public.docs AS m
             WHERE m.search OPERATOR(search.@@) pg_catalog.websearch_to_tsquery(docs_search.config, docs_search.query)
               AND m.deleted_at IS NULL
             ORDER BY rank DESC, rel, row_id
             LIMIT docs_search."limit" OFFSET docs_search."offset") AS h
      JOIN public.docs AS t ON t.ctid OPERATOR(pg_catalog.=) h.row_id AND t.tableoid OPERATOR(pg_catalog.=) h.rel
     ORDER BY h.rank DESC, h.rel, h.row_id;
END;
-- no-transaction
-- pgx VERSION: pattern "search" (up)
-- step 2 of 3: "backfill"
-- table: "public"."docs"
-- param columns = ["title:A","body"]
-- param config = {"name":"english","schema":null}
-- param config_column = "lang"
-- param unaccent = false
-- param column = "search"
-- param index = "gin"
-- param fastupdate = true
-- param tenant_column = "tenant_id"
-- param concurrently = false
-- param online = true
-- param batch_time = "50ms"
-- param rewrite_limit_mb = 100
-- param deleted_column = "deleted_at"
-- param headline_column = null
-- param headline_options = ""
-- param lock_timeout = "100ms"
-- param search_schema = "search"
-- param unaccent_configs = ["english"]
-- param leakproof = true
-- Runs outside a transaction: each statement commits on its own.

CALL public.docs_search_backfill();
-- no-transaction
-- pgx VERSION: pattern "search" (up)
-- step 3 of 3: "index"
-- table: "public"."docs"
-- param columns = ["title:A","body"]
-- param config = {"name":"english","schema":null}
-- param config_column = "lang"
-- param unaccent = false
-- param column = "search"
-- param index = "gin"
-- param fastupdate = true
-- param tenant_column = "tenant_id"
-- param concurrently = false
-- param online = true
-- param batch_time = "50ms"
-- param rewrite_limit_mb = 100
-- param deleted_column = "deleted_at"
-- param headline_column = null
-- param headline_options = ""
-- param lock_timeout = "100ms"
-- param search_schema = "search"
-- param unaccent_configs = ["english"]
-- param leakproof = true
-- Runs outside a transaction: each statement commits on its own.

CREATE INDEX CONCURRENTLY docs_search_idx ON public.docs USING gin (tenant_id, search search.tsvector_ops) WHERE deleted_at IS NULL;
