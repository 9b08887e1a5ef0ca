-- pgx 0.1.0: pattern "pgx_install" (up)
-- pgx provides: "pgx" 1
-- schema: "public"
-- param pgx_schema = "pgx"

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
        RETURN;
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

-- Fails if the schema exists: pgx's state must not start out in a schema someone prepared.
CREATE SCHEMA pgx;
COMMENT ON SCHEMA pgx IS 'pgx: state and helpers of pgx patterns. Only its owner, the role that migrates, may create objects here.';
GRANT USAGE ON SCHEMA pgx TO PUBLIC;

-- Tables the tenant pattern isolates: how (read by the partition helper and `pgx tenant check`),
-- and what each migration changed (read by its down migration). Only the owner writes here.
CREATE TABLE pgx.tenant_tables (
    relid             regclass PRIMARY KEY,
    tenant_column     name NOT NULL,
    current_tenant    regprocedure NOT NULL,
    isolation_policy  name NOT NULL,
    access_policy     name,
    policy_expression text,
    partitions        boolean NOT NULL,
    citus             boolean NOT NULL,
    global_unique     name[] NOT NULL DEFAULT '{}',
    restore           jsonb NOT NULL DEFAULT '{}',
    saved_default     regclass
);
COMMENT ON TABLE pgx.tenant_tables IS 'Tables isolated by pgx''s tenant pattern, and what each migration changed, for its down migration.';
COMMENT ON COLUMN pgx.tenant_tables.access_policy IS 'The permissive policy granting what isolation allows; NULL when isolation is the only, permissive, policy (Citus).';
COMMENT ON COLUMN pgx.tenant_tables.policy_expression IS 'The isolation policy''s USING and WITH CHECK expression as the server prints it with search_path pg_catalog, recorded when it was created: definitions found later are compared with it; it is never executed.';
COMMENT ON COLUMN pgx.tenant_tables.partitions IS 'Partitions created or attached later get the same policies from the event trigger.';
COMMENT ON COLUMN pgx.tenant_tables.global_unique IS 'Unique keys without the tenant column that the migration was told to keep (global_unique).';
COMMENT ON COLUMN pgx.tenant_tables.restore IS 'What the up migration found or replaced, as data (names, flags, column lists), from which the down migration rebuilds statements with format(%I).';
COMMENT ON COLUMN pgx.tenant_tables.saved_default IS 'A table in this schema whose only column carries, as its default, the tenant column''s default from before the migration.';
-- The configuration is no secret (the catalog shows the same), and whoever creates a partition
-- runs the helper that reads it; what the down migrations restore stays private.
GRANT SELECT (relid, tenant_column, current_tenant, isolation_policy, access_policy, policy_expression, partitions, citus, global_unique)
    ON pgx.tenant_tables TO PUBLIC;

-- Keys and foreign keys as data, and back. A tenant migration that replaces a key records what
-- it was with these, and its down migration rebuilds it from that record with format(%I, %L):
-- no SQL text is stored, so none can be smuggled into a later migration.

-- A unique index (or the primary key or unique constraint it backs) as data. `plain`: plain
-- columns in their default order, operator class and collation, no expression, no predicate;
-- only such keys are replaced (what else an index can say is not recorded).
CREATE FUNCTION pgx.tenant_key(index oid) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
RETURN (
    SELECT pg_catalog.jsonb_build_object(
        'schema', n.nspname, 'table', c.relname, 'index', ic.relname,
        'name', coalesce(k.conname, ic.relname),
        'kind', coalesce(k.contype::text, 'i'),
        'columns', (SELECT pg_catalog.jsonb_agg(a.attname ORDER BY u.n)
                    FROM pg_catalog.unnest((i.indkey::int2[])[0:i.indnkeyatts - 1]) WITH ORDINALITY u(attnum, n)
                    JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = u.attnum),
        'include', coalesce((SELECT pg_catalog.jsonb_agg(a.attname ORDER BY u.n)
                    FROM pg_catalog.unnest((i.indkey::int2[])[i.indnkeyatts:i.indnatts - 1]) WITH ORDINALITY u(attnum, n)
                    JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = u.attnum), '[]'),
        'nulls_not_distinct', i.indnullsnotdistinct,
        'deferrable', coalesce(k.condeferrable, false),
        'deferred', coalesce(k.condeferred, false),
        'options', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(o.option_name, o.option_value))
                    FROM pg_catalog.pg_options_to_table(ic.reloptions) o), '[]'),
        'tablespace', (SELECT s.spcname FROM pg_catalog.pg_tablespace s WHERE s.oid = ic.reltablespace),
        'comment', CASE WHEN k.oid IS NULL THEN pg_catalog.obj_description(ic.oid, 'pg_class')
                        ELSE pg_catalog.obj_description(k.oid, 'pg_constraint') END,
        'plain', i.indexprs IS NULL AND i.indpred IS NULL AND am.amname = 'btree'
            AND NOT EXISTS (SELECT FROM pg_catalog.unnest(i.indoption::int2[]) o WHERE o <> 0)
            AND NOT EXISTS (SELECT FROM pg_catalog.unnest(i.indclass::oid[]) u(opc)
                            JOIN pg_catalog.pg_opclass oc ON oc.oid = u.opc WHERE NOT oc.opcdefault)
            AND NOT EXISTS (SELECT FROM ROWS FROM (pg_catalog.unnest(i.indcollation::oid[]), pg_catalog.unnest((i.indkey::int2[])[0:i.indnkeyatts - 1])) u(coll, attnum)
                            JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = u.attnum
                            WHERE u.coll <> a.attcollation))
    FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_catalog.pg_am am ON am.oid = ic.relam
    JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_catalog.pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u')
    WHERE i.indexrelid = index
);

-- Creates the key `key` describes (as tenant_key gives it, or built by a migration).
CREATE FUNCTION pgx.tenant_create_key(key jsonb) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $pgx$
DECLARE
    k record;
    columns text;
    include text;
    options text;
BEGIN
    SELECT * INTO STRICT k FROM pg_catalog.jsonb_to_record(key) AS x(
        schema name, "table" name, name name, kind text, columns name[], include name[], nulls_not_distinct boolean,
        "deferrable" boolean, deferred boolean, options jsonb, tablespace name, comment text);
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(c), ', ' ORDER BY n) INTO columns
    FROM pg_catalog.unnest(k.columns) WITH ORDINALITY u(c, n);
    SELECT ' INCLUDE (' || pg_catalog.string_agg(pg_catalog.quote_ident(c), ', ' ORDER BY n) || ')' INTO include
    FROM pg_catalog.unnest(k.include) WITH ORDINALITY u(c, n);
    SELECT ' WITH (' || pg_catalog.string_agg(pg_catalog.format('%I = %L', o ->> 0, o ->> 1), ', ') || ')' INTO options
    FROM pg_catalog.jsonb_array_elements(coalesce(k.options, '[]')) o;
    IF k.kind IN ('p', 'u') THEN
        EXECUTE pg_catalog.format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s%s (%s)%s%s%s%s%s',
            k.schema, k."table", k.name,
            CASE k.kind WHEN 'p' THEN 'PRIMARY KEY' ELSE 'UNIQUE' END,
            CASE WHEN k.nulls_not_distinct THEN ' NULLS NOT DISTINCT' ELSE '' END,
            columns, coalesce(include, ''), coalesce(options, ''),
            CASE WHEN k.tablespace IS NOT NULL THEN pg_catalog.format(' USING INDEX TABLESPACE %I', k.tablespace) ELSE '' END,
            CASE WHEN k."deferrable" THEN ' DEFERRABLE' ELSE '' END,
            CASE WHEN k.deferred THEN ' INITIALLY DEFERRED' ELSE '' END);
        IF k.comment IS NOT NULL THEN
            EXECUTE pg_catalog.format('COMMENT ON CONSTRAINT %I ON %I.%I IS %L', k.name, k.schema, k."table", k.comment);
        END IF;
    ELSE
        EXECUTE pg_catalog.format('CREATE UNIQUE INDEX %I ON %I.%I (%s)%s%s%s%s',
            k.name, k.schema, k."table", columns, coalesce(include, ''),
            CASE WHEN k.nulls_not_distinct THEN ' NULLS NOT DISTINCT' ELSE '' END,
            coalesce(options, ''),
            CASE WHEN k.tablespace IS NOT NULL THEN pg_catalog.format(' TABLESPACE %I', k.tablespace) ELSE '' END);
        IF k.comment IS NOT NULL THEN
            EXECUTE pg_catalog.format('COMMENT ON INDEX %I.%I IS %L', k.schema, k.name, k.comment);
        END IF;
    END IF;
END
$pgx$;

-- A foreign key as data.
CREATE FUNCTION pgx.tenant_foreign_key(constraint_oid oid) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
RETURN (
    SELECT pg_catalog.jsonb_build_object(
        'schema', n.nspname, 'table', c.relname, 'name', k.conname,
        'columns', (SELECT pg_catalog.jsonb_agg(a.attname ORDER BY u.n)
                    FROM pg_catalog.unnest(k.conkey) WITH ORDINALITY u(attnum, n)
                    JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum),
        'ref_schema', rn.nspname, 'ref_table', r.relname,
        'ref_columns', (SELECT pg_catalog.jsonb_agg(a.attname ORDER BY u.n)
                    FROM pg_catalog.unnest(k.confkey) WITH ORDINALITY u(attnum, n)
                    JOIN pg_catalog.pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.attnum),
        'set_columns', coalesce((SELECT pg_catalog.jsonb_agg(a.attname ORDER BY u.n)
                    FROM pg_catalog.unnest(k.confdelsetcols) WITH ORDINALITY u(attnum, n)
                    JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum), '[]'),
        'match', k.confmatchtype, 'on_update', k.confupdtype, 'on_delete', k.confdeltype,
        'deferrable', k.condeferrable, 'deferred', k.condeferred, 'validated', k.convalidated,
        'comment', pg_catalog.obj_description(k.oid, 'pg_constraint'))
    FROM pg_catalog.pg_constraint k
    JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_catalog.pg_class r ON r.oid = k.confrelid
    JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
    WHERE k.oid = constraint_oid AND k.contype = 'f'
);

-- Creates the foreign key `fk` describes.
CREATE FUNCTION pgx.tenant_create_foreign_key(fk jsonb) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $pgx$
DECLARE
    k record;
    action CONSTANT jsonb := '{"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}'::jsonb;
BEGIN
    SELECT * INTO STRICT k FROM pg_catalog.jsonb_to_record(fk) AS x(
        schema name, "table" name, name name, columns name[], ref_schema name, ref_table name, ref_columns name[],
        set_columns name[], match text, on_update text, on_delete text,
        "deferrable" boolean, deferred boolean, validated boolean, comment text);
    EXECUTE pg_catalog.format('ALTER TABLE %I.%I ADD CONSTRAINT %I FOREIGN KEY (%s) REFERENCES %I.%I (%s)%s ON UPDATE %s ON DELETE %s%s%s%s%s',
        k.schema, k."table", k.name,
        (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(c), ', ' ORDER BY n) FROM pg_catalog.unnest(k.columns) WITH ORDINALITY u(c, n)),
        k.ref_schema, k.ref_table,
        (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(c), ', ' ORDER BY n) FROM pg_catalog.unnest(k.ref_columns) WITH ORDINALITY u(c, n)),
        CASE k.match WHEN 'f' THEN ' MATCH FULL' WHEN 'p' THEN ' MATCH PARTIAL' ELSE '' END,
        action ->> k.on_update, action ->> k.on_delete,
        (SELECT ' (' || pg_catalog.string_agg(pg_catalog.quote_ident(c), ', ' ORDER BY n) || ')'
         FROM pg_catalog.unnest(k.set_columns) WITH ORDINALITY u(c, n)),
        CASE WHEN k."deferrable" THEN ' DEFERRABLE' ELSE '' END,
        CASE WHEN k.deferred THEN ' INITIALLY DEFERRED' ELSE '' END,
        CASE WHEN k.validated THEN '' ELSE ' NOT VALID' END);
    IF k.comment IS NOT NULL THEN
        EXECUTE pg_catalog.format('COMMENT ON CONSTRAINT %I ON %I.%I IS %L', k.name, k.schema, k."table", k.comment);
    END IF;
END
$pgx$;

REVOKE ALL ON FUNCTION pgx.tenant_key(oid), pgx.tenant_create_key(jsonb), pgx.tenant_foreign_key(oid), pgx.tenant_create_foreign_key(jsonb) FROM PUBLIC;

-- Every way around the row security of `tbl` that the catalog shows: one row per door, with
-- what to do about it. A tenant migration calls it before it changes anything (refusing, or
-- closing, the doors it can), and `pgx tenant check` calls it for every registered table.
-- The doors that only a registered table can have (policies, row security flags, indexes,
-- privileges) are looked for when `tbl` is in the registry.
CREATE FUNCTION pgx.tenant_doors(tbl regclass, tenant_column name, keep_global name[] DEFAULT '{}')
    RETURNS TABLE (kind text, object text, detail text, fix text, data jsonb)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $pgx$
DECLARE
    reg record;
    registered boolean;
    tree oid[];
    views jsonb;
    readers oid[];
BEGIN
    SELECT pg_catalog.array_agg(p.relid) INTO tree FROM pg_catalog.pg_partition_tree(tbl) p;
    tree := coalesce(tree, ARRAY[tbl::oid]);
    SELECT r.* INTO reg FROM pgx.tenant_tables r WHERE r.relid = tbl;
    registered := FOUND;

    -- Views and materialized views reading the table or any partition, directly or through views.
    WITH RECURSIVE dependent(oid) AS (
        SELECT r.ev_class FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
        WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
          AND d.refobjid = ANY (tree) AND r.ev_class <> ALL (tree)
        UNION
        SELECT r.ev_class FROM dependent
        JOIN pg_catalog.pg_depend d ON d.refobjid = dependent.oid
        JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
        WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
          AND r.ev_class <> dependent.oid
    )
    SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'oid', c.oid, 'kind', c.relkind, 'name', pg_catalog.format('%I.%I', n.nspname, c.relname),
               'invoker', coalesce((SELECT o.option_value::boolean FROM pg_catalog.pg_options_to_table(c.reloptions) o
                                    WHERE o.option_name = 'security_invoker'), false))), '[]')
    INTO views
    FROM dependent
    JOIN pg_catalog.pg_class c ON c.oid = dependent.oid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('v', 'm');
    readers := tree || ARRAY(SELECT (v ->> 'oid')::oid FROM pg_catalog.jsonb_array_elements(views) v);

    RETURN QUERY
    SELECT 'materialized_view', v.name,
           pg_catalog.format('materialized view %s reads %s: row security does not apply to it, and refreshed by its owner it holds every tenant''s rows', v.name, tbl),
           pg_catalog.format('DROP MATERIALIZED VIEW %s; re-create it per tenant, or as a view WITH (security_invoker = true)', v.name),
           pg_catalog.jsonb_build_object('oid', v.oid)
    FROM pg_catalog.jsonb_to_recordset(views) v(oid oid, kind text, name text, invoker boolean) WHERE v.kind = 'm'
    UNION ALL
    SELECT 'view', v.name,
           pg_catalog.format('view %s reads %s with its owner''s rights, so row security applies to the owner, not to whoever queries it', v.name, tbl),
           pg_catalog.format('ALTER VIEW %s SET (security_invoker = true)', v.name),
           pg_catalog.jsonb_build_object('oid', v.oid)
    FROM pg_catalog.jsonb_to_recordset(views) v(oid oid, kind text, name text, invoker boolean) WHERE v.kind = 'v' AND NOT v.invoker
    ORDER BY 1, 2;

    -- SECURITY DEFINER functions of a role that bypasses row security (or can become one)
    -- reading the table, a partition or a view of them: SQL-standard bodies through their
    -- recorded dependencies, SQL and PL/pgSQL bodies through their text.
    RETURN QUERY
    SELECT 'definer', p.oid::regprocedure::text,
           pg_catalog.format('SECURITY DEFINER function %s runs as %s, which bypasses row security, and reads %s: it returns every tenant''s rows to whoever may call it',
                             p.oid::regprocedure, pg_catalog.pg_get_userbyid(p.proowner), tbl),
           pg_catalog.format('ALTER FUNCTION %s SECURITY INVOKER, or make its owner a role without BYPASSRLS that is no superuser', p.oid::regprocedure),
           pg_catalog.jsonb_build_object('oid', p.oid)
    FROM pg_catalog.pg_proc p
    WHERE p.prosecdef
      AND EXISTS (SELECT FROM pg_catalog.pg_roles r
                  WHERE (r.rolsuper OR r.rolbypassrls) AND pg_catalog.pg_has_role(p.proowner, r.oid, 'MEMBER'))
      AND (EXISTS (SELECT FROM pg_catalog.pg_depend d
                   WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid
                     AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = ANY (readers))
           OR (p.prosqlbody IS NULL
               AND p.prolang IN (SELECT l.oid FROM pg_catalog.pg_language l WHERE l.lanname IN ('sql', 'plpgsql'))
               AND EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid = ANY (readers)
                           AND p.prosrc ~* ('(^|[^[:alnum:]_$])'
                                            || pg_catalog.regexp_replace(c.relname, '([^[:alnum:]_])', '\\\1', 'g')
                                            || '($|[^[:alnum:]_$])'))))
    ORDER BY 2;

    -- Foreign keys between this table and tenant tables (itself included) that do not pair the
    -- tenant columns: referential checks and cascades bypass row security.
    RETURN QUERY
    WITH fk AS (
        SELECT k.oid, k.conname, k.conrelid, k.confrelid, k.conkey, k.confkey,
               CASE WHEN k.conrelid = tbl THEN tenant_column
                    ELSE (SELECT r.tenant_column FROM pgx.tenant_tables r WHERE r.relid = k.conrelid) END AS child_tenant,
               CASE WHEN k.confrelid = tbl THEN tenant_column
                    ELSE (SELECT r.tenant_column FROM pgx.tenant_tables r WHERE r.relid = k.confrelid) END AS parent_tenant
        FROM pg_catalog.pg_constraint k
        WHERE k.contype = 'f' AND k.conparentid = 0 AND (k.conrelid = tbl OR k.confrelid = tbl)
    )
    SELECT 'foreign_key', pg_catalog.format('%I on %s', fk.conname, fk.conrelid::regclass),
           pg_catalog.format('foreign key %I of %s references %s without pairing the tenant columns: referential checks and cascades bypass row security, so a tenant can reference (and so learn of) another tenant''s rows, and deletes cascade across tenants',
                             fk.conname, fk.conrelid::regclass, fk.confrelid::regclass),
           pg_catalog.format('make it (%I, ...) REFERENCES %s (%I, ...), e.g. with the tenant pattern''s composite_keys=true', fk.child_tenant, fk.confrelid::regclass, fk.parent_tenant),
           pg_catalog.jsonb_build_object('oid', fk.oid, 'child', fk.conrelid, 'parent', fk.confrelid,
                                         'child_tenant', fk.child_tenant, 'parent_tenant', fk.parent_tenant,
                                         'single', pg_catalog.cardinality(fk.conkey) = 1)
    FROM fk
    WHERE fk.child_tenant IS NOT NULL AND fk.parent_tenant IS NOT NULL
      AND NOT EXISTS (SELECT FROM ROWS FROM (pg_catalog.unnest(fk.conkey), pg_catalog.unnest(fk.confkey)) u(c, p)
                      JOIN pg_catalog.pg_attribute ca ON ca.attrelid = fk.conrelid AND ca.attnum = u.c
                      JOIN pg_catalog.pg_attribute pa ON pa.attrelid = fk.confrelid AND pa.attnum = u.p
                      WHERE ca.attname = fk.child_tenant AND pa.attname = fk.parent_tenant)
    ORDER BY 2;

    -- Unique keys without the tenant column: one tenant can take a value another needs, and find
    -- out which values the others use. An index of a partition that belongs to its root's index
    -- is the root's.
    RETURN QUERY
    WITH uk AS (
        SELECT i.indexrelid, i.indrelid, ic.relname, k.conname, i.indisprimary, pgx.tenant_key(i.indexrelid) AS key
        FROM pg_catalog.pg_index i
        JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
        LEFT JOIN pg_catalog.pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u')
        WHERE i.indrelid = ANY (tree) AND i.indisunique
          AND NOT EXISTS (SELECT FROM pg_catalog.pg_inherits h WHERE h.inhrelid = i.indexrelid)
          AND NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a
                          WHERE a.attrelid = i.indrelid AND a.attname = tenant_column
                            AND a.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1]))
          AND NOT ic.relname = ANY (coalesce(keep_global, '{}')) AND NOT coalesce(k.conname = ANY (keep_global), false)
    )
    SELECT 'unique', pg_catalog.format('%I on %s', coalesce(uk.conname, uk.relname), uk.indrelid::regclass),
           pg_catalog.format('unique key %I of %s (%s) does not hold %I: it is unique across tenants',
                             coalesce(uk.conname, uk.relname), uk.indrelid::regclass,
                             CASE WHEN uk.conname IS NOT NULL
                                  THEN (SELECT pg_catalog.pg_get_constraintdef(k.oid) FROM pg_catalog.pg_constraint k
                                        WHERE k.conindid = uk.indexrelid AND k.conrelid = uk.indrelid AND k.contype IN ('p', 'u'))
                                  ELSE pg_catalog.pg_get_indexdef(uk.indexrelid) END,
                             tenant_column),
           pg_catalog.format('put %I first in it (the tenant pattern''s unique=<column> does it for a single column), or keep it with global_unique=%I',
                             tenant_column, coalesce(uk.conname, uk.relname)),
           pg_catalog.jsonb_build_object('index', uk.indexrelid, 'constraint', uk.conname, 'primary', uk.indisprimary,
               -- The column `unique=` can make unique per tenant: the only column of a plain key.
               'column', CASE WHEN uk.indrelid = tbl AND NOT uk.indisprimary AND (uk.key ->> 'plain')::boolean
                                   AND pg_catalog.jsonb_array_length(uk.key -> 'columns') = 1
                                   AND pg_catalog.jsonb_array_length(uk.key -> 'include') = 0
                              THEN uk.key -> 'columns' ->> 0 END)
    FROM uk
    ORDER BY 2;

    IF NOT registered THEN
        RETURN;
    END IF;

    -- Row security, enabled and forced, on the table and on every partition.
    RETURN QUERY
    SELECT 'row_security', c.oid::regclass::text,
           pg_catalog.format('row security on %s is %s', c.oid::regclass,
                             CASE WHEN NOT c.relrowsecurity THEN 'disabled: no policy applies'
                                  ELSE 'not forced: the owner of the table bypasses it' END),
           pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', c.oid::regclass),
           pg_catalog.jsonb_build_object('oid', c.oid)
    FROM pg_catalog.pg_class c
    WHERE c.oid = ANY (tree) AND NOT (c.relrowsecurity AND c.relforcerowsecurity)
    ORDER BY 2;

    -- pgx's policies on the table and on every partition, as the migration created them.
    RETURN QUERY
    WITH wanted AS (
        SELECT reg.isolation_policy AS name, reg.citus AS permissive, reg.policy_expression AS expected
        UNION ALL
        SELECT reg.access_policy, true, 'true' WHERE reg.access_policy IS NOT NULL
    )
    SELECT CASE WHEN rel.oid = tbl THEN 'policy' ELSE 'partition_policy' END,
           pg_catalog.format('%I on %s', w.name, rel.oid::regclass),
           CASE WHEN p.oid IS NULL THEN pg_catalog.format('%s lacks pgx''s policy %I', rel.oid::regclass, w.name)
                ELSE pg_catalog.format('policy %I on %s is not pgx''s: it is %s FOR %s USING (%s) WITH CHECK (%s), where pgx''s is %s FOR ALL TO PUBLIC USING (%s) WITH CHECK (%s)',
                         w.name, rel.oid::regclass,
                         CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END, p.polcmd,
                         pg_catalog.pg_get_expr(p.polqual, p.polrelid), pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid),
                         CASE WHEN w.permissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END, w.expected, w.expected) END,
           CASE WHEN rel.oid = tbl
                THEN pg_catalog.format('DROP POLICY IF EXISTS %1$I ON %2$s; CREATE POLICY %1$I ON %2$s AS %3$s FOR ALL TO PUBLIC USING (%4$s) WITH CHECK (%4$s)',
                                       w.name, rel.oid::regclass, CASE WHEN w.permissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END, w.expected)
                ELSE pg_catalog.format('DROP POLICY IF EXISTS %I ON %s; SELECT %s(%L, %L)', w.name, rel.oid::regclass,
                                       'pgx.tenant_isolate_partition', rel.oid::regclass, tbl) END,
           pg_catalog.jsonb_build_object('oid', rel.oid, 'policy', w.name)
    FROM pg_catalog.unnest(tree) rel(oid)
    CROSS JOIN wanted w
    LEFT JOIN pg_catalog.pg_policy p ON p.polrelid = rel.oid AND p.polname = w.name
    WHERE p.oid IS NULL OR p.polpermissive <> w.permissive OR p.polcmd <> '*' OR p.polroles <> '{0}'
       OR coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid) <> w.expected, true)
       OR coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) <> w.expected, true)
    ORDER BY 2;

    -- Other permissive policies: on a partition, and on a Citus table, whose shards turn every
    -- policy permissive, they are OR'd with isolation.
    RETURN QUERY
    SELECT 'permissive_policy', pg_catalog.format('%I on %s', p.polname, p.polrelid::regclass),
           pg_catalog.format('permissive policy %I on %s is OR''d with tenant isolation%s', p.polname, p.polrelid::regclass,
                             CASE WHEN reg.citus THEN ' (Citus creates every policy permissive on the shards)'
                                  ELSE ', which only pgx''s restrictive policy on the partition keeps narrow' END),
           pg_catalog.format('DROP POLICY %I ON %s, or re-create it AS RESTRICTIVE', p.polname, p.polrelid::regclass),
           pg_catalog.jsonb_build_object('oid', p.polrelid, 'policy', p.polname)
    FROM pg_catalog.pg_policy p
    WHERE p.polrelid = ANY (tree) AND p.polpermissive
      AND (p.polrelid <> tbl OR reg.citus)
      AND p.polname IS DISTINCT FROM reg.access_policy
      AND NOT (reg.citus AND p.polname = reg.isolation_policy)
    ORDER BY 2;

    -- An index led by the tenant column on every table holding rows.
    RETURN QUERY
    SELECT 'index', c.oid::regclass::text,
           pg_catalog.format('%s has no valid btree index led by %I: every query through the policy reads the whole table', c.oid::regclass, tenant_column),
           pg_catalog.format('CREATE INDEX CONCURRENTLY ON %s (%I)', c.oid::regclass, tenant_column),
           pg_catalog.jsonb_build_object('oid', c.oid)
    FROM pg_catalog.pg_class c
    WHERE c.oid = ANY (tree) AND c.relkind = 'r'
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_index i
                      JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
                      JOIN pg_catalog.pg_am am ON am.oid = ic.relam
                      JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                      WHERE i.indrelid = c.oid AND a.attname = tenant_column AND am.amname = 'btree'
                        AND i.indpred IS NULL AND i.indisvalid)
    ORDER BY 2;

    -- Roles that bypass row security and may read or change the rows.
    RETURN QUERY
    SELECT 'bypassrls', pg_catalog.quote_ident(r.rolname),
           pg_catalog.format('role %I has BYPASSRLS and privileges on %s: row security does not apply to it', r.rolname, tbl),
           pg_catalog.format('REVOKE SELECT, INSERT, UPDATE, DELETE ON %s FROM %I (and from the roles it belongs to), or ALTER ROLE %I NOBYPASSRLS', tbl, r.rolname, r.rolname),
           pg_catalog.jsonb_build_object('role', r.rolname)
    FROM pg_catalog.pg_roles r
    WHERE r.rolbypassrls AND NOT r.rolsuper
      AND EXISTS (SELECT FROM pg_catalog.unnest(tree) rel(oid)
                  WHERE pg_catalog.has_table_privilege(r.oid, rel.oid, 'SELECT, INSERT, UPDATE, DELETE'))
    ORDER BY 2;
END
$pgx$;
REVOKE ALL ON FUNCTION pgx.tenant_doors(regclass, name, name[]) FROM PUBLIC;

-- A partition queried directly is checked against its own policies, not its root's: this gives
-- a partition of a registered table the same forced policies and tenant default. It runs as its
-- caller (an event trigger runs it as whoever creates or attaches a partition, often a
-- superuser), so it reads only pg_catalog and the registry, and builds every statement from
-- the registry's data. A policy of pgx's name that is not pgx's policy is an error: a
-- look-alike must not keep the real one out.
CREATE FUNCTION pgx.tenant_isolate_partition(partition regclass, root regclass) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $pgx$
DECLARE
    cfg record;
    fn text;
    wanted record;
    existing record;
BEGIN
    SELECT t.tenant_column, t.current_tenant, t.isolation_policy, t.access_policy, t.policy_expression, t.citus
    INTO cfg FROM pgx.tenant_tables t WHERE t.relid OPERATOR(pg_catalog.=) root;
    IF NOT FOUND OR partition OPERATOR(pg_catalog.=) root
       OR NOT coalesce(pg_catalog.pg_partition_root(partition) OPERATOR(pg_catalog.=) root, false) THEN
        RAISE EXCEPTION '% is not a partition of a tenant-isolated table %', partition, root;
    END IF;
    SELECT pg_catalog.format('%I.%I', n.nspname, p.proname) INTO fn
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
    WHERE p.oid OPERATOR(pg_catalog.=) cfg.current_tenant;

    IF NOT EXISTS (SELECT FROM pg_catalog.pg_class c
                   WHERE c.oid OPERATOR(pg_catalog.=) partition AND c.relrowsecurity AND c.relforcerowsecurity) THEN
        EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', partition);
    END IF;
    -- A table attached as a partition keeps its own default: new rows need the tenant's.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_attrdef d
                   JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) d.adrelid AND a.attnum OPERATOR(pg_catalog.=) d.adnum
                   WHERE d.adrelid OPERATOR(pg_catalog.=) partition AND a.attname OPERATOR(pg_catalog.=) cfg.tenant_column) THEN
        EXECUTE pg_catalog.format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s()', partition, cfg.tenant_column, fn);
    END IF;

    FOR wanted IN
        SELECT cfg.isolation_policy AS name, cfg.citus AS permissive, cfg.policy_expression AS expected,
               pg_catalog.format(CASE WHEN cfg.citus THEN '%I OPERATOR(pg_catalog.=) %s()'
                                      ELSE '%I OPERATOR(pg_catalog.=) (SELECT %s())' END,
                                 cfg.tenant_column, fn) AS expression
        UNION ALL
        SELECT cfg.access_policy, true, 'true', 'true' WHERE cfg.access_policy IS NOT NULL
    LOOP
        SELECT p.polpermissive AS permissive, p.polcmd AS cmd, p.polroles AS roles,
               pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS qual,
               pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) AS withcheck
        INTO existing FROM pg_catalog.pg_policy p
        WHERE p.polrelid OPERATOR(pg_catalog.=) partition AND p.polname OPERATOR(pg_catalog.=) wanted.name;
        IF NOT FOUND THEN
            EXECUTE pg_catalog.format('CREATE POLICY %I ON %s AS %s FOR ALL TO PUBLIC USING (%s) WITH CHECK (%s)',
                wanted.name, partition, CASE WHEN wanted.permissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                wanted.expression, wanted.expression);
        ELSIF existing.permissive OPERATOR(pg_catalog.<>) wanted.permissive
              OR existing.cmd OPERATOR(pg_catalog.<>) '*'
              OR existing.roles OPERATOR(pg_catalog.<>) '{0}'::pg_catalog.oid[]
              OR coalesce(existing.qual OPERATOR(pg_catalog.<>) wanted.expected, true)
              OR coalesce(existing.withcheck OPERATOR(pg_catalog.<>) wanted.expected, true) THEN
            RAISE EXCEPTION 'policy % on % is not pgx''s tenant policy of that name: it is % FOR % USING (%) WITH CHECK (%), where pgx''s is % FOR ALL TO PUBLIC USING (%) WITH CHECK (%)',
                    wanted.name, partition,
                    CASE WHEN existing.permissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END, existing.cmd, existing.qual, existing.withcheck,
                    CASE WHEN wanted.permissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END, wanted.expected, wanted.expected
                USING HINT = pg_catalog.format('DROP POLICY %I ON %s; pgx then creates its own', wanted.name, partition);
        END IF;
    END LOOP;
END
$pgx$;

-- Partitions created with PARTITION OF or attached later, at any level, of a registered table
-- that asked for it. An ALTER TABLE on a partition itself is left alone (the helper's own
-- ALTER TABLE fires this trigger again).
CREATE FUNCTION pgx.tenant_new_partitions() RETURNS event_trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $pgx$
DECLARE
    command record;
    root regclass;
    partition regclass;
BEGIN
    FOR command IN
        SELECT c.objid, c.command_tag FROM pg_catalog.pg_event_trigger_ddl_commands() c
        WHERE c.object_type OPERATOR(pg_catalog.=) 'table'
    LOOP
        root := pg_catalog.pg_partition_root(command.objid);
        CONTINUE WHEN root IS NULL OR NOT EXISTS (
            SELECT FROM pgx.tenant_tables t WHERE t.relid OPERATOR(pg_catalog.=) root AND t.partitions);
        FOR partition IN
            SELECT p.relid FROM pg_catalog.pg_partition_tree(command.objid) p
            WHERE p.relid OPERATOR(pg_catalog.<>) root
              AND (command.command_tag OPERATOR(pg_catalog.=) 'CREATE TABLE' OR p.relid OPERATOR(pg_catalog.<>) command.objid)
        LOOP
            PERFORM pgx.tenant_isolate_partition(partition, root);
        END LOOP;
    END LOOP;
END
$pgx$;

-- The helper stays executable by PUBLIC: the event trigger runs it as whoever creates a
-- partition, and it only changes partitions of registered tables, with ALTER TABLE and CREATE
-- POLICY, which need ownership of the partition.
REVOKE ALL ON FUNCTION pgx.tenant_new_partitions() FROM PUBLIC;

-- The session's search_path again, for the runner's bookkeeping.
SELECT pg_catalog.set_config('search_path', pg_catalog.current_setting('pgx.search_path'), true);
