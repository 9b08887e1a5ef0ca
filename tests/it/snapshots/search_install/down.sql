-- pgx VERSION: pattern "search_install" (down)
-- pgx provides: "search" 1
-- schema: "public"
-- param search_schema = "search"
-- param unaccent_configs = ["english"]
-- param leakproof = true

DROP OPERATOR CLASS search.tsvector_ops USING gin;
DROP OPERATOR FAMILY search.tsvector_ops USING gin;
DROP OPERATOR search.@@ (pg_catalog.tsvector, pg_catalog.tsquery);
DROP FUNCTION search.match(pg_catalog.tsvector, pg_catalog.tsquery);
DROP TEXT SEARCH CONFIGURATION search.english_unaccent;

-- The extensions this infrastructure created are the ones in its schema. RESTRICT: while
-- anything else uses one, the migration stops and PostgreSQL names what.
DO $pgx$
DECLARE
    ext pg_catalog.text;
BEGIN
    FOR ext IN
        SELECT x.extname FROM pg_catalog.pg_extension AS x
         WHERE x.extnamespace OPERATOR(pg_catalog.=) 'search'::pg_catalog.regnamespace
         ORDER BY x.extname
    LOOP
        EXECUTE pg_catalog.format('DROP EXTENSION %I RESTRICT', ext);
    END LOOP;
END
$pgx$;

-- RESTRICT: anything else someone put in the schema stops the migration instead of going too.
DROP SCHEMA search RESTRICT;
