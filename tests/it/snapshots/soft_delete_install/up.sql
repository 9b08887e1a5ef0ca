-- pgx VERSION: pattern "soft_delete_install" (up)
-- pgx provides: "soft_delete" 1
-- schema: "public"
-- param soft_delete_schema = "soft_delete"

-- The schema holds code that runs whenever a soft-delete table is changed, by any role: only
-- its owner (the role applying this migration) may create or replace anything in it.
DO $pgx$
BEGIN
    IF pg_catalog.to_regnamespace('soft_delete') IS NOT NULL THEN
        RAISE EXCEPTION 'schema % exists already: the soft-delete infrastructure needs a schema of its own that only the migrating role can write; render with --set soft_delete_schema=<another name>', 'soft_delete';
    ELSIF EXISTS (SELECT FROM pg_catalog.pg_extension x WHERE x.extname = 'lo') THEN
        RAISE EXCEPTION 'extension lo is installed already (in schema %): the soft-delete infrastructure installs it in its own schema', (
            SELECT n.nspname FROM pg_catalog.pg_extension x JOIN pg_catalog.pg_namespace n ON n.oid = x.extnamespace WHERE x.extname = 'lo')
            USING HINT = 'DROP EXTENSION lo if nothing uses it, or install the soft-delete infrastructure in another database';
    END IF;
END
$pgx$;

CREATE SCHEMA soft_delete;

DO $pgx$
DECLARE
    writers text;
BEGIN
    -- Default privileges can hand a new schema to other roles.
    SELECT pg_catalog.string_agg(r.rolname::text, ', ' ORDER BY r.rolname) INTO writers
    FROM pg_catalog.pg_roles r
    WHERE NOT r.rolsuper AND r.rolname OPERATOR(pg_catalog.<>) CURRENT_USER
      AND pg_catalog.has_schema_privilege(r.oid, 'soft_delete', 'CREATE');
    IF writers IS NOT NULL THEN
        RAISE EXCEPTION 'role(s) % could create objects in schema %, where code runs as every role that deletes: revoke CREATE (or the default privileges that granted it) first', writers, 'soft_delete';
    END IF;
END
$pgx$;

COMMENT ON SCHEMA soft_delete IS 'pgx soft_delete infrastructure (pgx new soft_delete_install)';

-- Every role that deletes runs these functions, which look each other up by name: USAGE (never
-- CREATE) for everyone.
GRANT USAGE ON SCHEMA soft_delete TO PUBLIC;

-- The trigger that lets the soft-delete rule count rows runs once per deleted row, so it must be
-- cheap: it is lo_manage, the C function of the trusted contrib extension lo, given a column
-- that is always NULL, for which it returns the row untouched (and unlinks nothing). A
-- PL/pgSQL trigger doing the same costs several times more per row (see benches/soft_delete.sh).
CREATE EXTENSION lo SCHEMA soft_delete;

-- The arguments of a trigger, from pg_trigger.tgargs (each one ends with a NUL byte).
CREATE FUNCTION soft_delete.trigger_args(args bytea, n integer) RETURNS text[]
    LANGUAGE plpgsql IMMUTABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $pgx$
DECLARE
    result text[] := '{}'::text[];
    rest bytea := args;
    nul integer;
BEGIN
    FOR i IN 1 .. n LOOP
        nul := pg_catalog.position(rest, '\x00'::bytea);
        result := result || pg_catalog.convert_from(pg_catalog.substring(rest, 1, nul - 1), pg_catalog.getdatabaseencoding());
        rest := pg_catalog.substring(rest, nul + 1);
    END LOOP;
    RETURN result;
END
$pgx$;

-- The acting user, read from a setting: NULL when it is unset, empty, reset or does not parse
-- as the type; never an error, so it cannot fail the delete.
CREATE FUNCTION soft_delete.actor(setting text, type regtype) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $pgx$
DECLARE
    raw text := NULLIF(pg_catalog.btrim(pg_catalog.current_setting(setting, true)), '');
BEGIN
    IF raw IS NULL OR type = 'pg_catalog.text'::pg_catalog.regtype THEN
        RETURN raw;
    END IF;
    EXECUTE pg_catalog.format('SELECT %L::%s::text', raw, type) INTO raw;
    RETURN raw;
EXCEPTION WHEN data_exception THEN
    RETURN NULL;
END
$pgx$;

-- The table's primary key columns in order, with each column's type and its equality
-- operator (as OPERATOR(schema.op), from the key's operator class).
CREATE FUNCTION soft_delete.key_columns(tbl regclass) RETURNS TABLE (ord bigint, name name, type text, eq text)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT k.ord, a.attname, pg_catalog.format_type(a.atttypid, NULL),
           pg_catalog.format('OPERATOR(%I.%s)', opn.nspname, op.oprname)
    FROM pg_catalog.pg_index i
    CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(i.indkey::int2[]), pg_catalog.unnest(i.indclass::oid[])) WITH ORDINALITY AS k(attnum, opclass, ord)
    JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    JOIN pg_catalog.pg_opclass oc ON oc.oid = k.opclass
    JOIN pg_catalog.pg_amop ao ON ao.amopfamily = oc.opcfamily AND ao.amoplefttype = oc.opcintype
        AND ao.amoprighttype = oc.opcintype AND ao.amopstrategy = 3
    JOIN pg_catalog.pg_operator op ON op.oid = ao.amopopr
    JOIN pg_catalog.pg_namespace opn ON opn.oid = op.oprnamespace
    WHERE i.indrelid = tbl AND i.indisprimary
    ORDER BY k.ord;
END;

-- `l.k = r.k AND ...` over the table's primary key.
CREATE FUNCTION soft_delete.key_join(tbl regclass, l text, r text) RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT pg_catalog.string_agg(pg_catalog.format('%s.%I %s %s.%I', l, k.name, k.eq, r, k.name), ' AND ' ORDER BY k.ord)
    FROM soft_delete.key_columns(tbl) k;
END;

-- `p.k = c.fk AND ...` over a foreign key, with the constraint's own operators; p is the
-- referenced side, c the referencing one.
CREATE FUNCTION soft_delete.fk_join(con oid, p text, c text) RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT pg_catalog.string_agg(pg_catalog.format('%s.%I OPERATOR(%I.%s) %s.%I', p, pa.attname, opn.nspname, op.oprname, c, ca.attname), ' AND ' ORDER BY k.ord)
    FROM pg_catalog.pg_constraint f
    CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(f.conkey), pg_catalog.unnest(f.confkey), pg_catalog.unnest(f.conpfeqop)) WITH ORDINALITY AS k(fk_att, pk_att, eqop, ord)
    JOIN pg_catalog.pg_attribute ca ON ca.attrelid = f.conrelid AND ca.attnum = k.fk_att
    JOIN pg_catalog.pg_attribute pa ON pa.attrelid = f.confrelid AND pa.attnum = k.pk_att
    JOIN pg_catalog.pg_operator op ON op.oid = k.eqop
    JOIN pg_catalog.pg_namespace opn ON opn.oid = op.oprnamespace
    WHERE f.oid = con;
END;

-- The referenced columns of a foreign key, as `alias.column, ...`.
CREATE FUNCTION soft_delete.fk_referenced(con oid, alias text) RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT pg_catalog.string_agg(pg_catalog.format('%s.%I', alias, pa.attname), ', ' ORDER BY k.ord)
    FROM pg_catalog.pg_constraint f
    CROSS JOIN LATERAL pg_catalog.unnest(f.confkey) WITH ORDINALITY AS k(pk_att, ord)
    JOIN pg_catalog.pg_attribute pa ON pa.attrelid = f.confrelid AND pa.attnum = k.pk_att
    WHERE f.oid = con;
END;

-- `, by_column = <actor>` for a table's configuration, or nothing.
CREATE FUNCTION soft_delete.actor_assignment(cfg text[], deleting boolean) RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT CASE WHEN cfg[2] OPERATOR(pg_catalog.=) '' THEN ''
                WHEN deleting THEN pg_catalog.format(', %I = (SELECT %s.actor(%L, %L))::%s', cfg[2],
                     pg_catalog.quote_ident('soft_delete'), cfg[3], cfg[4], cfg[4]::pg_catalog.regtype)
                ELSE pg_catalog.format(', %I = NULL', cfg[2]) END;
END;

-- The statement-level AFTER UPDATE trigger of every soft-delete table. Its arguments are the
-- table's configuration: deleted column, deleted-by column (or ''), actor setting, actor type,
-- and the view that counts intercepted deletes (or '' without interception).
--
-- A row is soft-deleted when its deleted column goes from NULL to a time, restored when it goes
-- back to NULL. For the rows this statement soft-deleted it
--   1. soft-deletes the live rows of soft-delete tables that reference them ON DELETE CASCADE,
--      stamping them with the parent's time (their own trigger carries it further down);
--   2. then refuses if live rows still reference them with ON DELETE RESTRICT or NO ACTION;
-- and for the rows it restored it
--   3. restores the rows that reference them ON DELETE CASCADE and carry the same time, that is
--      exactly those their soft delete cascaded to (not rows deleted before, on their own);
--   4. refuses if a row it restores references a row that is still soft-deleted.
-- (1 and 3 run in one pass over the foreign keys, before 2 and 4.)
-- Tables owned by another role than this table's owner are left alone: their triggers and
-- policies would run with the rights of the role that deletes.
CREATE FUNCTION soft_delete.on_update() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $pgx$
DECLARE
    tbl regclass := TG_RELID::regclass;
    col text := TG_ARGV[0];
    owner oid;
    key_join text;
    deleted text;
    restored text;
    fk record;
    hit text;
    any_deleted boolean;
    any_restored boolean;
BEGIN
    -- Statement-level triggers fire for statements that changed no row (a cascade that found
    -- nothing to do, say): stop there, or a cascade within one table would never end.
    IF NOT EXISTS (SELECT FROM pgx_new) THEN
        RETURN NULL;
    END IF;
    SELECT c.relowner INTO owner FROM pg_catalog.pg_class c WHERE c.oid = tbl;
    -- Most updates have nothing to carry: no foreign key that a soft delete or restore follows.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint f JOIN pg_catalog.pg_class c ON c.oid = f.conrelid
                   WHERE f.contype = 'f' AND f.conparentid = 0 AND f.confrelid = tbl
                     AND f.confdeltype IN ('c', 'r', 'a') AND c.relowner = owner)
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint f JOIN pg_catalog.pg_class p ON p.oid = f.confrelid
                       WHERE f.contype = 'f' AND f.conparentid = 0 AND f.conrelid = tbl
                         AND f.confdeltype IN ('c', 'r', 'a') AND p.relowner = owner
                         AND soft_delete.config(f.confrelid) IS NOT NULL) THEN
        RETURN NULL;
    END IF;

    key_join := soft_delete.key_join(tbl, 'n', 'o');
    deleted := pg_catalog.format('FROM pgx_new n JOIN pgx_old o ON %s WHERE o.%I IS NULL AND n.%I IS NOT NULL', key_join, col, col);
    restored := pg_catalog.format('FROM pgx_new n JOIN pgx_old o ON %s WHERE o.%I IS NOT NULL AND n.%I IS NULL', key_join, col, col);
    EXECUTE pg_catalog.format('SELECT EXISTS (SELECT %s), EXISTS (SELECT %s)', deleted, restored) INTO any_deleted, any_restored;
    IF NOT (any_deleted OR any_restored) THEN
        RETURN NULL;
    END IF;

    -- 1. Cascade the soft delete, and 3. restore exactly what it cascaded to: the same time
    -- marks the same delete.
    FOR fk IN
        SELECT f.oid, f.conrelid::regclass AS child, soft_delete.config(f.conrelid) AS cfg
        FROM pg_catalog.pg_constraint f JOIN pg_catalog.pg_class c ON c.oid = f.conrelid
        WHERE f.contype = 'f' AND f.conparentid = 0 AND f.confrelid = tbl AND f.confdeltype = 'c'
          AND c.relowner = owner AND soft_delete.config(f.conrelid) IS NOT NULL
        ORDER BY f.conname
    LOOP
        IF any_deleted THEN
            EXECUTE pg_catalog.format('UPDATE %s c SET %I = d."pgx stamp"%s FROM (SELECT %s, n.%I AS "pgx stamp" %s) d WHERE %s AND c.%I IS NULL',
                fk.child, fk.cfg[1], soft_delete.actor_assignment(fk.cfg, true),
                soft_delete.fk_referenced(fk.oid, 'n'), col, deleted, soft_delete.fk_join(fk.oid, 'd', 'c'), fk.cfg[1]);
        END IF;
        IF any_restored THEN
            EXECUTE pg_catalog.format('UPDATE %s c SET %I = NULL%s FROM (SELECT %s, o.%I AS "pgx stamp" %s) d WHERE %s AND c.%I OPERATOR(pg_catalog.=) d."pgx stamp"',
                fk.child, fk.cfg[1], soft_delete.actor_assignment(fk.cfg, false),
                soft_delete.fk_referenced(fk.oid, 'n'), col, restored, soft_delete.fk_join(fk.oid, 'd', 'c'), fk.cfg[1]);
        END IF;
    END LOOP;

    -- 2. Refuse while live rows reference a deleted row with RESTRICT or NO ACTION.
    FOR fk IN
        SELECT f.oid, f.conname, f.conrelid::regclass AS child, f.confdeltype, soft_delete.config(f.conrelid) AS cfg
        FROM pg_catalog.pg_constraint f JOIN pg_catalog.pg_class c ON c.oid = f.conrelid
        WHERE any_deleted AND f.contype = 'f' AND f.conparentid = 0 AND f.confrelid = tbl AND f.confdeltype IN ('r', 'a')
          AND c.relowner = owner
        ORDER BY f.conname
    LOOP
        EXECUTE pg_catalog.format('SELECT ROW(%s)::text FROM %s c JOIN (SELECT %s %s) d ON %s %s LIMIT 1',
            soft_delete.fk_referenced(fk.oid, 'd'), fk.child, soft_delete.fk_referenced(fk.oid, 'n'), deleted,
            soft_delete.fk_join(fk.oid, 'd', 'c'),
            CASE WHEN fk.cfg IS NULL THEN '' ELSE pg_catalog.format('WHERE c.%I IS NULL', fk.cfg[1]) END)
        INTO hit;
        IF hit IS NOT NULL THEN
            RAISE EXCEPTION USING
                ERRCODE = 'foreign_key_violation',
                MESSAGE = pg_catalog.format('cannot delete from %s: live rows of %s reference it through foreign key %I (ON DELETE %s)',
                    tbl, fk.child, fk.conname, CASE fk.confdeltype WHEN 'r' THEN 'RESTRICT' ELSE 'NO ACTION' END),
                DETAIL = pg_catalog.format('Key %s is still referenced from table %s.', hit, fk.child),
                HINT = pg_catalog.format('Delete the rows of %s that reference it first.', fk.child);
        END IF;
    END LOOP;

    -- 4. A restored row must not reference a row that is still soft-deleted.
    FOR fk IN
        SELECT f.oid, f.conname, f.confrelid::regclass AS parent, soft_delete.config(f.confrelid) AS cfg
        FROM pg_catalog.pg_constraint f JOIN pg_catalog.pg_class p ON p.oid = f.confrelid
        WHERE any_restored AND f.contype = 'f' AND f.conparentid = 0 AND f.conrelid = tbl AND f.confdeltype IN ('c', 'r', 'a')
          AND p.relowner = owner AND soft_delete.config(f.confrelid) IS NOT NULL
        ORDER BY f.conname
    LOOP
        EXECUTE pg_catalog.format('SELECT ROW(%s)::text FROM (SELECT n.* %s) n JOIN %s p ON %s WHERE p.%I IS NOT NULL LIMIT 1',
            soft_delete.fk_referenced(fk.oid, 'p'), restored, fk.parent, soft_delete.fk_join(fk.oid, 'p', 'n'), fk.cfg[1])
        INTO hit;
        IF hit IS NOT NULL THEN
            RAISE EXCEPTION USING
                ERRCODE = 'foreign_key_violation',
                MESSAGE = pg_catalog.format('cannot restore rows of %s: they reference soft-deleted rows of %s through foreign key %I',
                    tbl, fk.parent, fk.conname),
                DETAIL = pg_catalog.format('Key %s of %s is soft-deleted.', hit, fk.parent),
                HINT = pg_catalog.format('Restore the row of %s first; that restores the rows its delete cascaded to.', fk.parent);
        END IF;
    END LOOP;
    RETURN NULL;
END
$pgx$;

-- The configuration of a soft-delete table (the arguments of its on_update trigger), or NULL.
CREATE FUNCTION soft_delete.config(tbl regclass) RETURNS text[]
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT soft_delete.trigger_args(t.tgargs, t.tgnargs) FROM pg_catalog.pg_trigger t
    WHERE t.tgrelid = tbl AND t.tgfoid = 'soft_delete.on_update()'::pg_catalog.regprocedure;
END;

-- True, unless the row of soft-delete table tbl (as JSON) references through an ON DELETE
-- CASCADE foreign key a row that no longer exists: then this DELETE is that foreign key's
-- cascade from a row deleted for real (PostgreSQL runs those through rules too), and soft-
-- deleting would leave the row pointing at nothing, so it is refused. The soft-delete rule asks
-- only for DELETEs run by a trigger, which cascades are.
CREATE FUNCTION soft_delete.not_orphaned(tbl regclass, old_row jsonb) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $pgx$
DECLARE
    fk record;
    present boolean;
BEGIN
    FOR fk IN
        SELECT f.conname, f.confrelid::regclass AS parent,
               (SELECT pg_catalog.string_agg(pg_catalog.format('p.%I OPERATOR(%I.%s) ($1 OPERATOR(pg_catalog.->>) %L)::%s',
                           pa.attname, opn.nspname, op.oprname, ca.attname, pg_catalog.format_type(ca.atttypid, ca.atttypmod)), ' AND ')
                FROM ROWS FROM (pg_catalog.unnest(f.conkey), pg_catalog.unnest(f.confkey), pg_catalog.unnest(f.conpfeqop)) AS k(fk_att, pk_att, eqop)
                JOIN pg_catalog.pg_attribute ca ON ca.attrelid = f.conrelid AND ca.attnum = k.fk_att
                JOIN pg_catalog.pg_attribute pa ON pa.attrelid = f.confrelid AND pa.attnum = k.pk_att
                JOIN pg_catalog.pg_operator op ON op.oid = k.eqop
                JOIN pg_catalog.pg_namespace opn ON opn.oid = op.oprnamespace) AS match,
               (SELECT pg_catalog.bool_or(old_row ->> a.attname IS NULL)
                FROM pg_catalog.unnest(f.conkey) AS k(fk_att)
                JOIN pg_catalog.pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = k.fk_att) AS has_null
        FROM pg_catalog.pg_constraint f
        WHERE f.contype = 'f' AND f.conparentid = 0 AND f.conrelid = tbl AND f.confdeltype = 'c'
        ORDER BY f.conname
    LOOP
        CONTINUE WHEN fk.has_null;
        EXECUTE pg_catalog.format('SELECT EXISTS (SELECT FROM %s p WHERE %s)', fk.parent, fk.match) INTO present USING old_row;
        IF NOT present THEN
            RAISE EXCEPTION USING
                ERRCODE = 'foreign_key_violation',
                MESSAGE = pg_catalog.format('cannot delete rows of %s for real: rows of %s reference them through foreign key %I (ON DELETE CASCADE), and %s deletes softly, so they would be left pointing at nothing',
                    fk.parent, tbl, fk.conname, tbl),
                HINT = pg_catalog.format('Purge those rows of %s first, or let its owner delete them for real in the same transaction (ALTER TABLE %s DISABLE RULE soft_delete; ...; ALTER TABLE %s ENABLE RULE soft_delete).',
                    tbl, tbl, tbl);
        END IF;
    END LOOP;
    RETURN true;
END
$pgx$;

-- BEFORE DELETE on a soft-delete table (and, cloned, on each of its partitions): a DELETE that
-- reaches the rows themselves is a hard delete. It is allowed only while the table's soft-delete
-- rule is disabled, which only the table's owner can do (purge does it, for one transaction).
CREATE FUNCTION soft_delete.guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $pgx$
DECLARE
    root regclass := coalesce(pg_catalog.pg_partition_root(TG_RELID), TG_RELID);
    state "char";
BEGIN
    SELECT r.ev_enabled INTO state FROM pg_catalog.pg_rewrite r
    WHERE r.ev_class = root AND r.rulename = 'soft_delete';
    IF state = 'D' THEN
        RETURN OLD;
    ELSIF state IS NULL THEN
        RAISE EXCEPTION 'the soft-delete rule of % is missing, and this DELETE would remove rows for real', root
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = pg_catalog.format('Recreate it: SELECT %s.intercept(%L).', pg_catalog.quote_ident('soft_delete'), root::text);
    END IF;
    RAISE EXCEPTION 'rows of % are deleted softly through %: delete through % itself (a DELETE on a partition is not intercepted)', TG_TABLE_NAME, root, root
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = pg_catalog.format('To remove soft-deleted rows for real, purge them: SELECT %s.purge(%L, ...).', pg_catalog.quote_ident('soft_delete'), root::text);
END
$pgx$;

-- (Re)creates what turns DELETE on a soft-delete table into a soft delete:
--   * a view of the table's rows (security_invoker: the deleting role's row security applies),
--     with an INSTEAD OF DELETE trigger that counts each row without removing it;
--   * the rule `soft_delete`: ON DELETE DO INSTEAD, first delete the matching rows from that
--     view (so the statement reports its row count and RETURNING gives the deleted rows), then
--     stamp them with the statement's time (and the actor).
-- Rules capture the table's columns: run this again after adding or dropping a column, or
-- DELETE ... RETURNING * fails. PostgreSQL refuses a rule with RETURNING on a table that has
-- ever had a column dropped: there the rule has none, so DELETE counts its rows but DELETE ...
-- RETURNING is refused (a warning says so).
CREATE FUNCTION soft_delete.intercept(tbl regclass) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $pgx$
DECLARE
    cfg text[] := soft_delete.config(tbl);
    sd text := pg_catalog.quote_ident('soft_delete');
    nsp name;
    owner regrole;
    counter text;
    columns text;
    returning_list text;
BEGIN
    IF cfg IS NULL THEN
        RAISE EXCEPTION '% is not a soft-delete table', tbl USING HINT = 'pgx new soft_delete TABLE';
    ELSIF cfg[5] = '' THEN
        RAISE EXCEPTION '% was made a soft-delete table without intercepting DELETE (intercept=false)', tbl;
    END IF;
    SELECT n.nspname, c.relowner::regrole INTO nsp, owner
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl;
    counter := pg_catalog.format('%I.%I', nsp, cfg[5]);
    IF pg_catalog.to_regclass(counter) IS NOT NULL AND NOT EXISTS (
        SELECT FROM pg_catalog.pg_trigger t
        WHERE t.tgrelid = pg_catalog.to_regclass(counter) AND t.tgfoid = 'soft_delete.lo_manage()'::pg_catalog.regprocedure) THEN
        RAISE EXCEPTION '% exists and is not the view that counts soft deletes of %', counter, tbl;
    END IF;
    EXECUTE pg_catalog.format('DROP RULE IF EXISTS soft_delete ON %s', tbl);
    EXECUTE pg_catalog.format('DROP VIEW IF EXISTS %s', counter);

    IF EXISTS (SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid = tbl AND a.attname = 'pgx soft_delete') THEN
        RAISE EXCEPTION '% has a column named "pgx soft_delete", which the soft-delete view needs', tbl;
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum),
           ' RETURNING ' || pg_catalog.string_agg('pgx_v.' || pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)
    INTO columns, returning_list
    FROM pg_catalog.pg_attribute a WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped;
    -- Rows already soft-deleted are left out, except for a DELETE run by a trigger (a foreign
    -- key's cascade, maybe): the rule checks those with not_orphaned. The last column is the
    -- always-NULL one the counting trigger (lo_manage) is given.
    EXECUTE pg_catalog.format('CREATE VIEW %s WITH (security_invoker = true) AS SELECT %s, NULL::pg_catalog.oid AS "pgx soft_delete" FROM %s WHERE %I IS NULL OR pg_catalog.pg_trigger_depth() OPERATOR(pg_catalog.>) 0',
        counter, columns, tbl, cfg[1]);
    IF owner <> CURRENT_USER::regrole THEN
        EXECUTE pg_catalog.format('ALTER VIEW %s OWNER TO %s', counter, owner);
    END IF;
    EXECUTE pg_catalog.format('REVOKE ALL ON %s FROM PUBLIC', counter);
    EXECUTE pg_catalog.format('COMMENT ON VIEW %s IS %L', counter,
        pg_catalog.format('pgx soft_delete: counts the rows a DELETE on %s soft-deletes (rule soft_delete); not for use', tbl));
    EXECUTE pg_catalog.format('CREATE TRIGGER soft_delete INSTEAD OF DELETE ON %s FOR EACH ROW EXECUTE FUNCTION %s.lo_manage(%L)',
        counter, sd, 'pgx soft_delete');
    IF EXISTS (SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid = tbl AND a.attisdropped) THEN
        returning_list := '';
        RAISE WARNING '% has dropped columns, so its soft-delete rule cannot have RETURNING (a PostgreSQL restriction): DELETE ... RETURNING on it will be refused', tbl;
    END IF;
    EXECUTE pg_catalog.format('CREATE RULE soft_delete AS ON DELETE TO %s DO INSTEAD ('
        'DELETE FROM %s pgx_v WHERE %s AND CASE WHEN pg_catalog.pg_trigger_depth() OPERATOR(pg_catalog.=) 0 THEN true '
        'ELSE %s.not_orphaned(%L::pg_catalog.regclass, pg_catalog.to_jsonb(pgx_v.*)) AND pgx_v.%I IS NULL END%s; '
        'UPDATE %s pgx_t SET %I = (SELECT pg_catalog.clock_timestamp())%s WHERE %s AND pgx_t.%I IS NULL)',
        tbl, counter, soft_delete.key_join(tbl, 'pgx_v', 'old'), sd, tbl, cfg[1], returning_list,
        tbl, cfg[1], soft_delete.actor_assignment(cfg, true), soft_delete.key_join(tbl, 'pgx_t', 'old'), cfg[1]);
    EXECUTE pg_catalog.format('COMMENT ON RULE soft_delete ON %s IS %L', tbl,
        'pgx soft_delete: DELETE marks rows deleted instead of removing them');
END
$pgx$;

-- Hard-deletes one batch of rows soft-deleted before now() - older_than, and returns how many.
-- The soft-delete rule of the table, and of the soft-delete tables its ON DELETE CASCADE
-- foreign keys reach, is disabled for this transaction (which needs their owner, and a short
-- ACCESS EXCLUSIVE lock on each: call it in short transactions, until it returns 0).
CREATE FUNCTION soft_delete.purge(tbl regclass, older_than interval, batch_size integer) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    SET lock_timeout = '5s'
AS $pgx$
DECLARE
    cfg text[] := soft_delete.config(tbl);
    rel regclass;
    disabled regclass[] := '{}'::regclass[];
    purged bigint;
BEGIN
    IF cfg IS NULL THEN
        RAISE EXCEPTION '% is not a soft-delete table', tbl;
    ELSIF older_than IS NULL OR batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'purge needs an interval and a batch size of at least 1';
    END IF;
    FOR rel IN
        WITH RECURSIVE reach(rel) AS (
            SELECT tbl::oid
            UNION
            SELECT f.conrelid FROM reach JOIN pg_catalog.pg_constraint f
                ON f.confrelid = reach.rel AND f.contype = 'f' AND f.conparentid = 0 AND f.confdeltype = 'c')
        SELECT reach.rel::regclass FROM reach
        JOIN pg_catalog.pg_rewrite r ON r.ev_class = reach.rel AND r.rulename = 'soft_delete' AND r.ev_enabled = 'O'
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s DISABLE RULE soft_delete', rel);
        disabled := disabled || rel;
    END LOOP;
    EXECUTE pg_catalog.format('DELETE FROM %s pgx_t USING (SELECT * FROM %s WHERE %I OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) $1) LIMIT $2 FOR UPDATE SKIP LOCKED) pgx_b WHERE %s',
        tbl, tbl, cfg[1], soft_delete.key_join(tbl, 'pgx_t', 'pgx_b'))
        USING older_than, batch_size;
    GET DIAGNOSTICS purged = ROW_COUNT;
    FOREACH rel IN ARRAY disabled LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE RULE soft_delete', rel);
    END LOOP;
    RETURN purged;
END
$pgx$;
