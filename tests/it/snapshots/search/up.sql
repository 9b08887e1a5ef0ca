-- pgx VERSION: pattern "search" (up)
-- table: "public"."articles"
-- param columns = ["title:A","summary:B","body"]
-- param config = {"name":"english","schema":null}
-- param config_column = null
-- param unaccent = true
-- param column = "search"
-- param index = "gin"
-- param fastupdate = true
-- param tenant_column = null
-- param concurrently = false
-- param online = false
-- param batch_time = "50ms"
-- param rewrite_limit_mb = 100
-- param deleted_column = null
-- param headline_column = null
-- param headline_options = ""
-- param lock_timeout = "100ms"
-- param search_schema = "search"
-- param unaccent_configs = ["english"]
-- param leakproof = false

SET LOCAL lock_timeout = '100ms';

-- Checks before anything changes; each failure says what to do.
DO $pgx$
DECLARE
    tbl pg_catalog.regclass := 'public.articles';
    kind pg_catalog."char";
    missing pg_catalog.text;
    config_type pg_catalog.regtype;
    schema_owner pg_catalog.text;
    schema_owner_super boolean;
    writers pg_catalog.text;
    size_mb pg_catalog.numeric;
BEGIN
    SELECT c.relkind INTO kind FROM pg_catalog.pg_class AS c WHERE c.oid OPERATOR(pg_catalog.=) tbl;
    IF kind IS NULL OR NOT kind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p']::pg_catalog."char"[]) THEN
        RAISE EXCEPTION '% is not a table', 'public.articles';
    END IF;

    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(u.name), ', ') INTO missing
      FROM pg_catalog.unnest(ARRAY['title', 'summary', 'body', 'body']::pg_catalog.text[]) AS u (name)
     WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                        WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) u.name
                          AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION '% has no column %', 'public.articles', missing;
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) 'search'
                  AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION '% already has a column %: render this migration with --set column=<another name>', 'public.articles', 'search';
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

    -- Adding a stored generated column rewrites the table (every partition) under an exclusive
    -- lock that blocks reads and writes until it is done.
    SELECT pg_catalog.round(pg_catalog.sum(pg_catalog.pg_table_size(p.relid)) OPERATOR(pg_catalog./) 1048576.0, 1) INTO size_mb
      FROM (SELECT tbl UNION SELECT t.relid FROM pg_catalog.pg_partition_tree(tbl) AS t) AS p (relid);
    IF size_mb OPERATOR(pg_catalog.>) 100 THEN
        RAISE EXCEPTION '% holds % MB: adding a generated column would rewrite it under an exclusive lock, blocking its readers and writers meanwhile', 'public.articles', size_mb
            USING HINT = 'render this migration with --set online=true (a trigger, a batched backfill and a concurrent index build), or raise --set rewrite_limit_mb=... to accept the rewrite';
    END IF;
END
$pgx$;

-- Computed by PostgreSQL on every write, after BEFORE triggers; always STORED (PostgreSQL 18
-- makes generated columns virtual by default, and a virtual column cannot be indexed).
ALTER TABLE public.articles ADD COLUMN search pg_catalog.tsvector
    GENERATED ALWAYS AS (pg_catalog.setweight(pg_catalog.to_tsvector('search.english_unaccent'::pg_catalog.regconfig, COALESCE(title::pg_catalog.text, ''::pg_catalog.text)), 'A'::pg_catalog."char")
        OPERATOR(pg_catalog.||) pg_catalog.setweight(pg_catalog.to_tsvector('search.english_unaccent'::pg_catalog.regconfig, COALESCE(summary::pg_catalog.text, ''::pg_catalog.text)), 'B'::pg_catalog."char")
        OPERATOR(pg_catalog.||) pg_catalog.setweight(pg_catalog.to_tsvector('search.english_unaccent'::pg_catalog.regconfig, COALESCE(body::pg_catalog.text, ''::pg_catalog.text)), 'D'::pg_catalog."char")) STORED;

CREATE INDEX articles_search_idx ON public.articles USING gin (search);

-- Ranked search, best first: security invoker, so row security applies; websearch_to_tsquery
-- never fails on user input, and an empty or stop-word-only query matches no row.
CREATE FUNCTION public.articles_search(query pg_catalog.text, "limit" pg_catalog.int4 DEFAULT 10, "offset" pg_catalog.int4 DEFAULT 0, headline pg_catalog.bool DEFAULT false)
    RETURNS TABLE (hit public.articles, rank pg_catalog.float4, snippet pg_catalog.text)
    LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    -- The query is parsed once for the ranking and the snippets (an InitPlan); the match is
    -- written out so that the planner sees a constant query when there is one. The matches are
    -- ranked by their row address alone; only the page of winners is read back whole (a TID
    -- scan each, in the same snapshot).
    SELECT t AS hit, h.rank,
           CASE WHEN articles_search.headline THEN pg_catalog.ts_headline('search.english_unaccent'::pg_catalog.regconfig, t.body::pg_catalog.text, (SELECT pg_catalog.websearch_to_tsquery('search.english_unaccent'::pg_catalog.regconfig, articles_search.query))) END
      FROM (SELECT m.tableoid AS rel, m.ctid AS row_id,
                   pg_catalog.ts_rank_cd(m.search, (SELECT pg_catalog.websearch_to_tsquery('search.english_unaccent'::pg_catalog.regconfig, articles_search.query))) AS rank
              FROM public.articles AS m
             WHERE m.search OPERATOR(pg_catalog.@@) pg_catalog.websearch_to_tsquery('search.english_unaccent'::pg_catalog.regconfig, articles_search.query)
             ORDER BY rank DESC, rel, row_id
             LIMIT articles_search."limit" OFFSET articles_search."offset") AS h
      JOIN public.articles AS t ON t.ctid OPERATOR(pg_catalog.=) h.row_id AND t.tableoid OPERATOR(pg_catalog.=) h.rel
     ORDER BY h.rank DESC, h.rel, h.row_id;
END;
