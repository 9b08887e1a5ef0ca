-- pgx VERSION: pattern "search" (down)
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

DROP FUNCTION public.articles_search(pg_catalog.text, pg_catalog.int4, pg_catalog.int4, pg_catalog.bool);
DROP INDEX public.articles_search_idx;
ALTER TABLE public.articles DROP COLUMN search;
