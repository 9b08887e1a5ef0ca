-- pgx VERSION: pattern "search" (down)
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

DROP FUNCTION public.docs_search(pg_catalog.text, pg_catalog.int4, pg_catalog.int4, pg_catalog.bool, pg_catalog.regconfig);
DROP PROCEDURE public.docs_search_backfill(pg_catalog.interval, pg_catalog.text);
DROP TRIGGER docs_search ON public.docs;
DROP FUNCTION public.docs_search_update();
ALTER TABLE public.docs DROP COLUMN search;
DROP FUNCTION public.docs_search_vector(pg_catalog.text, pg_catalog.text, pg_catalog.regconfig);
-- no-transaction
-- pgx VERSION: pattern "search" (down)
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


-- no-transaction
-- pgx VERSION: pattern "search" (down)
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

DROP INDEX CONCURRENTLY IF EXISTS public.docs_search_idx;
