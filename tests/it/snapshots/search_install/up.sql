-- pgx VERSION: pattern "search_install" (up)
-- pgx provides: "search" 1
-- schema: "public"
-- param search_schema = "search"
-- param unaccent_configs = ["english"]
-- param leakproof = true

-- The shared search objects live in a schema of their own that only the migrating role (and
-- superusers) can write: text search configurations are resolved by name when a migration is
-- applied, and nobody else may put one there.
DO $pgx$
BEGIN
    IF pg_catalog.to_regnamespace('search') IS NOT NULL THEN
        RAISE EXCEPTION 'schema % exists already: the search infrastructure needs a schema of its own', 'search'
            USING HINT = 'render search_install (or the first search migration) with --set search_schema=<another name>';
    END IF;
    IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles AS r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER) THEN
        RAISE EXCEPTION 'leakproof=true declares a match operator LEAKPROOF, which needs a superuser: apply this migration as one, or render it without leakproof';
    END IF;
END
$pgx$;

CREATE SCHEMA search;

-- Default privileges for schemas could hand CREATE to other roles: refuse rather than share.
DO $pgx$
DECLARE
    writers pg_catalog.text;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.pg_get_userbyid(a.grantee)::pg_catalog.text, ', ') INTO writers
      FROM pg_catalog.pg_namespace AS n, pg_catalog.aclexplode(n.nspacl) AS a
     WHERE n.nspname OPERATOR(pg_catalog.=) 'search' AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'
       AND a.grantee OPERATOR(pg_catalog.<>) n.nspowner;
    IF writers IS NOT NULL THEN
        RAISE EXCEPTION 'schema % would be writable by % (default privileges): the search infrastructure needs a schema only its owner can write', 'search', writers;
    END IF;
END
$pgx$;

-- Other roles may name what is here (a configuration in websearch_to_tsquery, the operator),
-- never create anything.
GRANT USAGE ON SCHEMA search TO PUBLIC;

-- Extensions the search patterns use: created here, in this schema, when they are missing (the
-- down migration drops those that live here); an existing one is used where it is, provided its
-- owner is this role or a superuser (its owner could otherwise drop it, and with CASCADE
-- everything built on it).
DO $pgx$
DECLARE
    ext pg_catalog.text;
    owner_name pg_catalog.text;
    owner_super boolean;
BEGIN
    FOREACH ext IN ARRAY ARRAY['btree_gin', 'unaccent'] LOOP
        SELECT r.rolname, r.rolsuper INTO owner_name, owner_super
          FROM pg_catalog.pg_extension AS x JOIN pg_catalog.pg_roles AS r ON r.oid OPERATOR(pg_catalog.=) x.extowner
         WHERE x.extname OPERATOR(pg_catalog.=) ext;
        IF NOT FOUND THEN
            BEGIN
                EXECUTE pg_catalog.format('CREATE EXTENSION %I SCHEMA %I', ext, 'search');
            EXCEPTION WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'cannot create extension %: %', ext, SQLERRM
                    USING HINT = pg_catalog.format('ask a superuser to run CREATE EXTENSION %I, or to let this role create in the database (GRANT CREATE ON DATABASE)', ext);
            END;
        ELSIF NOT owner_super AND owner_name OPERATOR(pg_catalog.<>) CURRENT_USER THEN
            RAISE EXCEPTION 'extension % belongs to role %, which could drop it and what search builds on it: the search infrastructure uses only extensions owned by the migrating role or a superuser', ext, owner_name
                USING HINT = pg_catalog.format('apply this migration as %I, or have a superuser drop the extension and let this migration create it', owner_name);
        END IF;
    END LOOP;
END
$pgx$;

-- 'english' with the unaccent dictionary in front of every word mapping: it strips
-- accents and passes the word on to the configuration's own dictionaries (a filtering dictionary).
CREATE TEXT SEARCH CONFIGURATION search.english_unaccent (COPY = pg_catalog.english);

DO $pgx$
DECLARE
    dict pg_catalog.text;
    mapping record;
BEGIN
    -- The extension's own dictionary, found through the extension rather than by name.
    SELECT pg_catalog.format('%I.%I', n.nspname, d.dictname) INTO dict
      FROM pg_catalog.pg_depend AS dep
      JOIN pg_catalog.pg_extension AS x ON x.oid OPERATOR(pg_catalog.=) dep.refobjid
      JOIN pg_catalog.pg_ts_dict AS d ON d.oid OPERATOR(pg_catalog.=) dep.objid
      JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) d.dictnamespace
     WHERE dep.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_ts_dict'::pg_catalog.regclass
       AND dep.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND dep.deptype OPERATOR(pg_catalog.=) 'e' AND x.extname OPERATOR(pg_catalog.=) 'unaccent'
       AND d.dictname OPERATOR(pg_catalog.=) 'unaccent';
    IF dict IS NULL THEN
        RAISE EXCEPTION 'the unaccent extension has no unaccent dictionary';
    END IF;
    FOR mapping IN
        SELECT t.alias,
               pg_catalog.string_agg(pg_catalog.format('%I.%I', n.nspname, d.dictname), ', ' ORDER BY m.mapseqno) AS dicts
          FROM pg_catalog.pg_ts_config_map AS m
          JOIN pg_catalog.pg_ts_config AS c ON c.oid OPERATOR(pg_catalog.=) m.mapcfg
          JOIN pg_catalog.ts_token_type(c.cfgparser) AS t ON t.tokid OPERATOR(pg_catalog.=) m.maptokentype
          JOIN pg_catalog.pg_ts_dict AS d ON d.oid OPERATOR(pg_catalog.=) m.mapdict
          JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) d.dictnamespace
         WHERE m.mapcfg OPERATOR(pg_catalog.=) 'search.english_unaccent'::pg_catalog.regconfig
           AND t.alias OPERATOR(pg_catalog.=) ANY (ARRAY['word', 'hword', 'hword_part']::pg_catalog.text[])
         GROUP BY t.alias
    LOOP
        EXECUTE pg_catalog.format('ALTER TEXT SEARCH CONFIGURATION %s ALTER MAPPING FOR %I WITH %s, %s',
                                  'search.english_unaccent', mapping.alias, dict, mapping.dicts);
    END LOOP;
END
$pgx$;

-- The match operator, declared LEAKPROOF: the same C function as PostgreSQL's tsvector @@ tsquery
-- (ts_match_vq), which raises no error and emits nothing that depends on the vector, so it
-- reveals nothing but its boolean result. Under row-level security only a leakproof operator may
-- be checked by an index before the policy; with this one, a search under the tenant policy is
-- one index scan on (tenant, vector). See the README's search section for what this declares.
CREATE FUNCTION search.match(pg_catalog.tsvector, pg_catalog.tsquery) RETURNS pg_catalog.bool
    LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF
AS 'ts_match_vq';

CREATE OPERATOR search.@@ (
    LEFTARG = pg_catalog.tsvector,
    RIGHTARG = pg_catalog.tsquery,
    FUNCTION = search.match,
    RESTRICT = pg_catalog.tsmatchsel,
    JOIN = pg_catalog.tsmatchjoinsel
);

-- PostgreSQL's GIN support functions for tsvector, serving both operators: an index of this
-- class answers PostgreSQL's @@ as well as this schema's.
CREATE OPERATOR CLASS search.tsvector_ops FOR TYPE pg_catalog.tsvector USING gin AS
    OPERATOR 1 pg_catalog.@@ (pg_catalog.tsvector, pg_catalog.tsquery),
    OPERATOR 2 search.@@ (pg_catalog.tsvector, pg_catalog.tsquery),
    FUNCTION 1 pg_catalog.gin_cmp_tslexeme(pg_catalog.text, pg_catalog.text),
    FUNCTION 2 pg_catalog.gin_extract_tsvector(pg_catalog.tsvector, pg_catalog.internal, pg_catalog.internal),
    FUNCTION 3 pg_catalog.gin_extract_tsquery(pg_catalog.tsvector, pg_catalog.internal, pg_catalog.int2, pg_catalog.internal, pg_catalog.internal, pg_catalog.internal, pg_catalog.internal),
    FUNCTION 4 pg_catalog.gin_tsquery_consistent(pg_catalog.internal, pg_catalog.int2, pg_catalog.tsvector, pg_catalog.int4, pg_catalog.internal, pg_catalog.internal, pg_catalog.internal, pg_catalog.internal),
    FUNCTION 5 pg_catalog.gin_cmp_prefix(pg_catalog.text, pg_catalog.text, pg_catalog.int2, pg_catalog.internal),
    FUNCTION 6 pg_catalog.gin_tsquery_triconsistent(pg_catalog.internal, pg_catalog.int2, pg_catalog.tsvector, pg_catalog.int4, pg_catalog.internal, pg_catalog.internal, pg_catalog.internal),
    STORAGE pg_catalog.text;
