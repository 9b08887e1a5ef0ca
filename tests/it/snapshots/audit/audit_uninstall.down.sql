-- pgx 0.1.0: pattern "audit_uninstall" (down)
-- schema: "public"
-- param audit_schema = "audit"
-- param actor_setting = "app.user_id"
-- param actor_type = "bigint"
-- param lock_timeout = "100ms"

SET LOCAL lock_timeout = '100ms';

-- ---------------------------------------------------------------------------------------------
-- Shared audit infrastructure in schema audit: created by the first audit migration,
-- left as it is by later ones (every statement below is idempotent).
-- ---------------------------------------------------------------------------------------------

-- An infrastructure installed with other settings is never silently reconfigured.
DO $pgx$
BEGIN
    -- Remembered for the privilege clean-up at the end of the infrastructure.
    PERFORM pg_catalog.set_config('pgx.audit_installing',
        (pg_catalog.to_regclass('audit.log') IS NULL)::text, true);
    IF pg_catalog.to_regprocedure('audit.settings()') IS NOT NULL THEN
        IF audit.settings() OPERATOR(pg_catalog.<>) pg_catalog.jsonb_build_object('version', 1, 'actor_setting', 'app.user_id', 'actor_type', 'bigint') THEN
            RAISE EXCEPTION 'the audit infrastructure in schema % was installed with settings %, and this migration asks for %',
                'audit', audit.settings(), pg_catalog.jsonb_build_object('version', 1, 'actor_setting', 'app.user_id', 'actor_type', 'bigint')
                USING HINT = 'render this migration with the same schema, actor_setting and actor_type as the first audit migration';
        END IF;
    END IF;
END
$pgx$;

CREATE SCHEMA IF NOT EXISTS audit;

-- What this infrastructure was installed with; read by the check above.
CREATE OR REPLACE FUNCTION audit.settings() RETURNS pg_catalog.jsonb
    LANGUAGE sql
    IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $pgx$ SELECT pg_catalog.jsonb_build_object('version', 1, 'actor_setting', 'app.user_id', 'actor_type', 'bigint') $pgx$;

-- Which tables are audited, and how. Columns are kept as attribute numbers, so renaming a
-- column can never make an excluded one appear in the log. key_columns NULL means the
-- primary key, as it is when each statement runs.
CREATE TABLE IF NOT EXISTS audit.audited_table (
    relid            regclass PRIMARY KEY,
    key_columns      smallint[],
    excluded_columns smallint[] NOT NULL DEFAULT '{}',
    skip_unchanged   boolean NOT NULL
);

-- Append-only for everyone but superusers, the owner included: privileges already keep other
-- roles out; this keeps the owner (often the migrating role) from rewriting history.
CREATE OR REPLACE FUNCTION audit.forbid_change() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $pgx$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles AS r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER AND r.rolsuper) THEN
        RAISE EXCEPTION '%.% is append-only: % is not allowed', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'only a superuser can remove or change audit history';
    END IF;
    RETURN NULL;
END
$pgx$;

-- The log, created once: later audit migrations leave it alone, and so take no lock on it that
-- would queue audited writes behind them.
DO $pgx$
BEGIN
    IF pg_catalog.to_regclass('audit.log') IS NOT NULL THEN
        RETURN;
    END IF;

    -- The log. Names are stored as text, so they read well and survive dump/restore (an oid does
    -- neither). There is no primary key on id: the identity column is unique by construction
    -- (GENERATED ALWAYS, and only the owner may insert), and a second btree would cost every
    -- audited write; the indexes below serve look-ups by key and by time.
    CREATE TABLE audit.log (
        id               bigint GENERATED ALWAYS AS IDENTITY,
        txid             xid8 NOT NULL,
        logged_at        timestamptz NOT NULL,
        schema_name      text NOT NULL,
        table_name       text NOT NULL,
        partition_name   text,
        operation        text NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')),
        row_key          jsonb,
        old_key          jsonb,
        new_row          jsonb,
        old_row          jsonb,
        changed_columns  text[],
        actor            pg_catalog.int8,
        db_role          text NOT NULL,
        application_name text
    );

    COMMENT ON TABLE audit.log IS 'Append-only audit trail written by pgx audit triggers. logged_at is the transaction time; row_key is the row''s key as JSON (after the statement; before it for DELETE); old_key is set when an UPDATE changed the key; partition_name is set when the statement named a partition rather than the audited table.';

    -- History look-ups are by key: hash indexes, as equality is all they need. In a log that
    -- holds many tables they cost bulk writes less than a btree, which would insert in the
    -- middle of the tree; no key is too long for them (a btree entry cannot pass 2.7 kB, which
    -- would fail the user's write); tables sharing a key value are told apart by the recheck
    -- on schema_name and table_name. BRIN serves time ranges at almost no cost.
    CREATE INDEX log_logged_at_brin ON audit.log USING brin (logged_at);
    CREATE INDEX log_row_key ON audit.log USING hash (row_key);
    CREATE INDEX log_old_key ON audit.log USING hash (old_key) WHERE old_key IS NOT NULL;
    CREATE INDEX log_truncate ON audit.log (schema_name, table_name) WHERE operation = 'TRUNCATE';

    CREATE TRIGGER log_append_only
        BEFORE UPDATE OR DELETE OR TRUNCATE ON audit.log
        FOR EACH STATEMENT EXECUTE FUNCTION audit.forbid_change();

    -- Fires even with session_replication_role = replica.
    ALTER TABLE audit.log ENABLE ALWAYS TRIGGER log_append_only;
END
$pgx$;

-- The trigger function every audited table (and partition) uses: one statement-level AFTER
-- trigger per event, reading the statement's transition tables, so a bulk statement costs one
-- INSERT ... SELECT into the log instead of one INSERT per row.
--
-- SECURITY DEFINER, so writers need no privilege on the log; search_path pinned and every
-- reference qualified, so no schema or temporary object of the caller can stand in for what
-- it uses. The other SET clauses make the recorded JSON independent of the session
-- (timestamptz offsets, interval and float text, bytea), so keys compare equal across sessions;
-- work_mem lets an UPDATE pair its old and new rows in memory up to a few hundred thousand rows
-- (larger statements spill to disk, as any sort does), and JIT compilation, which the row
-- estimates of large transition tables would trigger, costs more than it saves here.
CREATE OR REPLACE FUNCTION audit.capture() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET timezone = 'UTC'
    SET intervalstyle = 'postgres'
    SET extra_float_digits = 1
    SET bytea_output = 'hex'
    SET work_mem = '64MB'
    SET jit = off
AS $pgx$
DECLARE
    v_relid      oid;
    v_schema     text;
    v_table      text;
    v_partition  text;
    v_skip       boolean;
    v_excluded   text[];
    v_key        text[];
    v_non_key    text[];
    v_raw        text;
    v_actor      pg_catalog.int8;
    v_role       text;
    v_app        text;
    v_txid       xid8;
    v_at         timestamptz;
BEGIN
    -- The audited table (this one, or the nearest audited ancestor of this partition) and the
    -- column names to leave out and to key rows by. Partitions have the audited table's column
    -- names, so names resolved there fit the rows of either. Without a key (the primary key was
    -- dropped since), row_key is NULL. One query with no parameter but the table, so PL/pgSQL
    -- keeps one generic plan instead of planning it again on every statement.
    SELECT r.relid, n.nspname, c.relname, r.skip_unchanged, k.excluded, k.key,
           CASE WHEN k.key IS NOT NULL THEN k.non_key END
      INTO v_relid, v_schema, v_table, v_skip, v_excluded, v_key, v_non_key
      FROM (SELECT TG_RELID::regclass, 0::bigint
            UNION ALL
            SELECT * FROM pg_catalog.pg_partition_ancestors(TG_RELID) WITH ORDINALITY) AS a (relid, depth)
      JOIN audit.audited_table AS r ON r.relid OPERATOR(pg_catalog.=) a.relid
      JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) r.relid
      JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
      LEFT JOIN pg_catalog.pg_index AS pk ON pk.indrelid OPERATOR(pg_catalog.=) r.relid AND pk.indisprimary
     CROSS JOIN LATERAL (
            SELECT coalesce(pg_catalog.array_agg(t.attname::text) FILTER (WHERE t.attnum OPERATOR(pg_catalog.=) ANY (r.excluded_columns)), '{}') AS excluded,
                   pg_catalog.array_agg(t.attname::text) FILTER (WHERE t.attnum OPERATOR(pg_catalog.=) ANY (coalesce(r.key_columns, pk.indkey::smallint[]))) AS key,
                   coalesce(pg_catalog.array_agg(t.attname::text) FILTER (WHERE t.attnum OPERATOR(pg_catalog.<>) ALL (coalesce(r.key_columns, pk.indkey::smallint[]))), '{}') AS non_key
              FROM pg_catalog.pg_attribute AS t
             WHERE t.attrelid OPERATOR(pg_catalog.=) r.relid AND t.attnum OPERATOR(pg_catalog.>) 0 AND NOT t.attisdropped) AS k
     ORDER BY a.depth
     LIMIT 1;
    IF NOT FOUND THEN
        RAISE WARNING 'audit: %.% has audit triggers but is not registered in %; nothing was recorded',
            TG_TABLE_SCHEMA, TG_TABLE_NAME, 'audit.audited_table';
        RETURN NULL;
    END IF;
    IF v_relid OPERATOR(pg_catalog.<>) TG_RELID THEN
        v_partition := pg_catalog.format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME);
    END IF;

    -- Never fails the user's write: unset, reset, empty or malformed means no actor.
    v_raw := NULLIF(pg_catalog.btrim(pg_catalog.current_setting('app.user_id', true)), '');
    IF v_raw IS NOT NULL THEN
        BEGIN
            v_actor := v_raw::pg_catalog.int8;
        EXCEPTION WHEN data_exception THEN
            v_actor := NULL;
        END;
    END IF;
    -- The role the session acts as (SET ROLE included); current_user is this function's owner.
    v_role := pg_catalog.current_setting('role');
    IF v_role OPERATOR(pg_catalog.=) 'none' THEN
        v_role := SESSION_USER;
    END IF;
    v_app := NULLIF(pg_catalog.current_setting('application_name'), '');
    v_txid := pg_catalog.pg_current_xact_id();
    v_at := pg_catalog.now();

    -- OFFSET 0 keeps each row's JSON computed once: without it the planner pulls the subquery
    -- up and evaluates to_jsonb() once per reference.
    IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
        INSERT INTO audit.log (txid, logged_at, schema_name, table_name, partition_name, operation,
                               row_key, new_row, actor, db_role, application_name)
        SELECT v_txid, v_at, v_schema, v_table, v_partition, 'INSERT',
               x.j OPERATOR(pg_catalog.-) v_non_key,
               x.j, v_actor, v_role, v_app
          FROM (SELECT pg_catalog.to_jsonb(t) OPERATOR(pg_catalog.-) v_excluded AS j FROM new_rows AS t OFFSET 0) AS x;
    ELSIF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
        -- PostgreSQL appends each updated row's old and new versions to the two transition
        -- tables together (cross-partition moves included), so the n-th rows of both are the
        -- same row: pairing by position stays right when the key itself changes.
        INSERT INTO audit.log (txid, logged_at, schema_name, table_name, partition_name, operation,
                               row_key, old_key, new_row, old_row, changed_columns, actor, db_role, application_name)
        SELECT v_txid, v_at, v_schema, v_table, v_partition, 'UPDATE',
               q.nj OPERATOR(pg_catalog.-) v_non_key,
               CASE WHEN q.changed OPERATOR(pg_catalog.&&) v_key THEN q.oj OPERATOR(pg_catalog.-) v_non_key END,
               q.nj, q.oj, q.changed, v_actor, v_role, v_app
          FROM (SELECT j.nj, j.oj,
                       ARRAY(SELECT k FROM pg_catalog.jsonb_object_keys(j.nj) AS k
                              WHERE j.nj OPERATOR(pg_catalog.->) k IS DISTINCT FROM j.oj OPERATOR(pg_catalog.->) k) AS changed
                  FROM (SELECT pg_catalog.to_jsonb(n.r) OPERATOR(pg_catalog.-) v_excluded AS nj,
                               pg_catalog.to_jsonb(o.r) OPERATOR(pg_catalog.-) v_excluded AS oj
                          FROM (SELECT pg_catalog.row_number() OVER () AS rn, t AS r FROM new_rows AS t) AS n
                          JOIN (SELECT pg_catalog.row_number() OVER () AS rn, t AS r FROM old_rows AS t) AS o
                            ON o.rn OPERATOR(pg_catalog.=) n.rn
                        OFFSET 0) AS j
                 WHERE NOT v_skip OR j.nj OPERATOR(pg_catalog.<>) j.oj
                OFFSET 0) AS q;
    ELSIF TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
        INSERT INTO audit.log (txid, logged_at, schema_name, table_name, partition_name, operation,
                               row_key, old_row, actor, db_role, application_name)
        SELECT v_txid, v_at, v_schema, v_table, v_partition, 'DELETE',
               x.j OPERATOR(pg_catalog.-) v_non_key,
               x.j, v_actor, v_role, v_app
          FROM (SELECT pg_catalog.to_jsonb(t) OPERATOR(pg_catalog.-) v_excluded AS j FROM old_rows AS t OFFSET 0) AS x;
    ELSE
        INSERT INTO audit.log (txid, logged_at, schema_name, table_name, partition_name, operation,
                               actor, db_role, application_name)
        VALUES (v_txid, v_at, v_schema, v_table, v_partition, 'TRUNCATE', v_actor, v_role, v_app);
    END IF;
    RETURN NULL;
END
$pgx$;

-- Gives every partition below an audited table (at any depth, foreign tables aside: they
-- cannot have transition tables) the audit triggers it lacks. A statement on a partitioned
-- table fires only that table's statement triggers, and one naming a partition only the
-- partition's, so each level needs its own.
CREATE OR REPLACE FUNCTION audit.attach_partitions(tbl regclass) RETURNS void
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $pgx$
DECLARE
    p regclass;
BEGIN
    FOR p IN
        SELECT t.relid
          FROM pg_catalog.pg_partition_tree(tbl) AS t
          JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) t.relid
         WHERE t.relid OPERATOR(pg_catalog.<>) tbl AND c.relkind IN ('r', 'p')
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS g
                            WHERE g.tgrelid OPERATOR(pg_catalog.=) t.relid
                              AND g.tgname OPERATOR(pg_catalog.=) 'audit_insert')
         ORDER BY t.level
    LOOP
        EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION %s()',
                                  'audit_insert', p, 'audit.capture');
        EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION %s()',
                                  'audit_update', p, 'audit.capture');
        EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION %s()',
                                  'audit_delete', p, 'audit.capture');
        EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION %s()',
                                  'audit_truncate', p, 'audit.capture');
    END LOOP;
END
$pgx$;

-- Validates and records a table's audit settings, and audits its existing partitions; the
-- migration then creates the table's own triggers. Errors here stop the migration before any
-- trigger exists.
CREATE OR REPLACE FUNCTION audit.register_table(tbl regclass, key_columns text[], excluded_columns text[], skip_unchanged boolean)
    RETURNS void
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $pgx$
DECLARE
    v_kind     "char";
    v_key      smallint[];
    v_excluded smallint[];
    v_missing  text;
BEGIN
    SELECT c.relkind INTO v_kind FROM pg_catalog.pg_class AS c WHERE c.oid OPERATOR(pg_catalog.=) tbl;
    IF v_kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'audit: % is not a table', tbl;
    END IF;
    IF tbl IN ('audit.log'::regclass, 'audit.audited_table'::regclass) THEN
        RAISE EXCEPTION 'audit: % is part of the audit infrastructure and cannot be audited', tbl;
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_trigger AS g WHERE g.tgrelid OPERATOR(pg_catalog.=) tbl
                  AND g.tgfoid OPERATOR(pg_catalog.=) 'audit.capture()'::pg_catalog.regprocedure) THEN
        RAISE EXCEPTION 'audit: % is already audited', tbl;
    END IF;

    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(u.name), ', ')
      INTO v_missing
      FROM pg_catalog.unnest(key_columns OPERATOR(pg_catalog.||) excluded_columns) AS u (name)
     WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                        WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) u.name
                          AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped);
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'audit: table % has no column %', tbl, v_missing;
    END IF;
    SELECT pg_catalog.array_agg(a.attnum ORDER BY u.ord) INTO v_key
      FROM pg_catalog.unnest(key_columns) WITH ORDINALITY AS u (name, ord)
      JOIN pg_catalog.pg_attribute AS a ON a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) u.name;
    SELECT coalesce(pg_catalog.array_agg(a.attnum ORDER BY a.attnum), '{}') INTO v_excluded
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) ANY (excluded_columns);

    IF v_key IS NULL AND NOT EXISTS (SELECT FROM pg_catalog.pg_index AS i
                                      WHERE i.indrelid OPERATOR(pg_catalog.=) tbl AND i.indisprimary) THEN
        RAISE EXCEPTION 'audit: table % has no primary key, so its rows cannot be told apart in the audit log', tbl
            USING HINT = 'add a primary key, or name the columns that identify a row: pgx new audit TABLE --set key=column[,column...]';
    END IF;
    IF v_excluded OPERATOR(pg_catalog.&&) coalesce(v_key, (SELECT i.indkey::smallint[] FROM pg_catalog.pg_index AS i
                                                         WHERE i.indrelid OPERATOR(pg_catalog.=) tbl AND i.indisprimary)) THEN
        RAISE EXCEPTION 'audit: a key column of % cannot be excluded: the key identifies rows in the log', tbl;
    END IF;
    IF v_kind OPERATOR(pg_catalog.=) 'p' AND NOT EXISTS (
        SELECT FROM pg_catalog.pg_event_trigger AS e
         WHERE e.evtfoid OPERATOR(pg_catalog.=) 'audit.on_ddl()'::pg_catalog.regprocedure
           AND e.evtenabled OPERATOR(pg_catalog.<>) 'D') THEN
        RAISE EXCEPTION 'audit: % is partitioned, and only the event trigger % can audit partitions created later, which is missing',
            tbl, 'audit_partitions'
            USING HINT = 'creating event triggers needs a superuser: apply the first audit migration as one';
    END IF;

    DELETE FROM audit.audited_table AS r WHERE r.relid OPERATOR(pg_catalog.=) tbl;
    INSERT INTO audit.audited_table (relid, key_columns, excluded_columns, skip_unchanged)
    VALUES (tbl, v_key, v_excluded, skip_unchanged);
    PERFORM audit.attach_partitions(tbl);
END
$pgx$;

-- Removes the audit triggers of a table's partitions and its registration; the migration drops
-- the table's own triggers. History stays in the log.
CREATE OR REPLACE FUNCTION audit.unregister_table(tbl regclass) RETURNS void
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $pgx$
DECLARE
    p regclass;
BEGIN
    FOR p IN
        SELECT t.relid FROM pg_catalog.pg_partition_tree(tbl) AS t
         WHERE t.relid OPERATOR(pg_catalog.<>) tbl
         ORDER BY t.level DESC
    LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS %I ON %s', 'audit_insert', p);
        EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS %I ON %s', 'audit_update', p);
        EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS %I ON %s', 'audit_delete', p);
        EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS %I ON %s', 'audit_truncate', p);
    END LOOP;
    DELETE FROM audit.audited_table AS r WHERE r.relid OPERATOR(pg_catalog.=) tbl;
END
$pgx$;

-- Event trigger functions: partitions created or attached later get their triggers in the same
-- transaction; a partition detached from an audited table loses them (its rows are no longer
-- the audited table's); dropped tables leave the registry.
CREATE OR REPLACE FUNCTION audit.on_ddl() RETURNS event_trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $pgx$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT DISTINCT t.relid
          FROM pg_catalog.pg_event_trigger_ddl_commands() AS d
         CROSS JOIN LATERAL pg_catalog.pg_partition_ancestors(d.objid) AS a (relid)
          JOIN audit.audited_table AS t ON t.relid OPERATOR(pg_catalog.=) a.relid
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
    LOOP
        PERFORM audit.attach_partitions(r.relid);
    END LOOP;
    FOR r IN
        SELECT g.tgrelid::regclass AS rel, g.tgname
          FROM pg_catalog.pg_trigger AS g
         WHERE g.tgfoid OPERATOR(pg_catalog.=) 'audit.capture()'::pg_catalog.regprocedure
           AND NOT EXISTS (SELECT FROM audit.audited_table AS t
                            WHERE t.relid OPERATOR(pg_catalog.=) g.tgrelid
                               OR t.relid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT pg_catalog.pg_partition_ancestors(g.tgrelid))))
    LOOP
        RAISE NOTICE 'audit: % is no longer a partition of an audited table; dropping its audit trigger %', r.rel, r.tgname;
        EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', r.tgname, r.rel);
    END LOOP;
END
$pgx$;

CREATE OR REPLACE FUNCTION audit.on_drop() RETURNS event_trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $pgx$
BEGIN
    DELETE FROM audit.audited_table AS t
     USING pg_catalog.pg_event_trigger_dropped_objects() AS d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid OPERATOR(pg_catalog.=) 0
       AND t.relid::oid OPERATOR(pg_catalog.=) d.objid;
END
$pgx$;

-- Event triggers need a superuser. Without them, partitioned tables cannot be audited
-- (register_table says so) and plain tables are unaffected.
DO $pgx$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles AS r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER AND r.rolsuper) THEN
        RAISE NOTICE 'audit: not a superuser, so event trigger % is not installed: partitioned tables cannot be audited', 'audit_partitions';
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger AS e WHERE e.evtname OPERATOR(pg_catalog.=) 'audit_partitions') THEN
        CREATE EVENT TRIGGER audit_partitions ON ddl_command_end
            WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
            EXECUTE FUNCTION audit.on_ddl();
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger AS e WHERE e.evtname OPERATOR(pg_catalog.=) 'audit_dropped_tables') THEN
        CREATE EVENT TRIGGER audit_dropped_tables ON sql_drop
            EXECUTE FUNCTION audit.on_drop();
    END IF;
END
$pgx$;

-- One row's history, oldest first: its INSERT, UPDATEs and DELETE (an UPDATE that changed the
-- key shows under both keys), and each TRUNCATE that removed it. By names, so the history of a
-- dropped or renamed table can still be read; the key as recorded (see row_key).
CREATE OR REPLACE FUNCTION audit.history(schema_name text, table_name text, key jsonb)
    RETURNS SETOF audit.log
    LANGUAGE sql
    STABLE
BEGIN ATOMIC
    WITH ev AS (
        SELECT l.*
          FROM audit.log AS l
         WHERE l.schema_name OPERATOR(pg_catalog.=) history.schema_name
           AND l.table_name OPERATOR(pg_catalog.=) history.table_name
           AND (l.row_key OPERATOR(pg_catalog.=) history.key OR l.old_key OPERATOR(pg_catalog.=) history.key)
    ), tr AS (
        SELECT l.*
          FROM audit.log AS l
         WHERE l.schema_name OPERATOR(pg_catalog.=) history.schema_name
           AND l.table_name OPERATOR(pg_catalog.=) history.table_name
           AND l.operation OPERATOR(pg_catalog.=) 'TRUNCATE'
           AND l.id OPERATOR(pg_catalog.>) (SELECT pg_catalog.min(e.id) FROM ev AS e)
    ), last_before AS (
        -- For each TRUNCATE, the row's latest event before it: the row was there to be removed
        -- if that event left it under this key, and no earlier TRUNCATE removed it already.
        SELECT t.*, (SELECT e.id FROM ev AS e WHERE e.id OPERATOR(pg_catalog.<) t.id ORDER BY e.id DESC LIMIT 1) AS prev
          FROM tr AS t
    )
    SELECT ev.* FROM ev
    UNION ALL
    SELECT b.id, b.txid, b.logged_at, b.schema_name, b.table_name, b.partition_name, b.operation, b.row_key,
           b.old_key, b.new_row, b.old_row, b.changed_columns, b.actor, b.db_role, b.application_name
      FROM last_before AS b
      JOIN ev AS e ON e.id OPERATOR(pg_catalog.=) b.prev
     WHERE e.operation OPERATOR(pg_catalog.<>) 'DELETE'
       AND e.row_key OPERATOR(pg_catalog.=) history.key
       AND NOT EXISTS (SELECT FROM tr AS t2 WHERE t2.id OPERATOR(pg_catalog.>) b.prev AND t2.id OPERATOR(pg_catalog.<) b.id)
     ORDER BY 1;
END;

-- The same by table, with the key read through the table's column types: '{"id": "7"}' finds
-- {"id": 7}, and a timestamptz key may be written in any zone.
CREATE OR REPLACE FUNCTION audit.history(tbl regclass, key jsonb)
    RETURNS SETOF audit.log
    LANGUAGE plpgsql
    STABLE
    SET search_path = pg_catalog, pg_temp
    SET timezone = 'UTC'
    SET intervalstyle = 'postgres'
    SET extra_float_digits = 1
    SET bytea_output = 'hex'
AS $pgx$
DECLARE
    v_schema  text;
    v_table   text;
    v_unknown text;
    v_key     jsonb;
BEGIN
    -- A partition's rows are recorded under the audited table it belongs to.
    SELECT n.nspname, c.relname INTO v_schema, v_table
      FROM (SELECT tbl, 0::bigint
            UNION ALL
            SELECT * FROM pg_catalog.pg_partition_ancestors(tbl) WITH ORDINALITY) AS a (relid, depth)
      LEFT JOIN audit.audited_table AS r ON r.relid OPERATOR(pg_catalog.=) a.relid
      JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) a.relid
      JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
     ORDER BY r.relid IS NULL, a.depth
     LIMIT 1;
    IF pg_catalog.jsonb_typeof(key) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'audit: the key must be a JSON object of column values, such as {"id": 7}';
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(k), ', ') INTO v_unknown
      FROM pg_catalog.jsonb_object_keys(key) AS k
     WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                        WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) k
                          AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped);
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'audit: table % has no column %', tbl, v_unknown;
    END IF;
    EXECUTE pg_catalog.format('SELECT pg_catalog.to_jsonb(pg_catalog.jsonb_populate_record(NULL::%s, $1))', tbl)
       INTO v_key USING key;
    v_key := v_key OPERATOR(pg_catalog.-) ARRAY(SELECT k FROM pg_catalog.jsonb_object_keys(v_key) AS k
                                                 WHERE NOT key OPERATOR(pg_catalog.?) k);
    RETURN QUERY SELECT * FROM audit.history(v_schema, v_table, v_key);
END
$pgx$;

-- Privileges: nobody but the owner (and superusers) writes the log or runs the SECURITY
-- DEFINER functions, and PUBLIC has nothing. Revoking from every grantee, not only PUBLIC,
-- undoes default privileges (ALTER DEFAULT PRIVILEGES ... GRANT ... ON TABLES) that applied
-- when these objects were created: the log holds copies of rows from every audited table, so
-- even reading it is for the roles named as readers. Once installed, later migrations revoke
-- only what no reader has (so earlier readers keep SELECT).
REVOKE ALL ON SCHEMA audit FROM PUBLIC;
REVOKE ALL ON TABLE audit.log, audit.audited_table FROM PUBLIC;
REVOKE ALL ON FUNCTION audit.settings(), audit.forbid_change(), audit.capture(), audit.attach_partitions(regclass),
    audit.register_table(regclass, text[], text[], boolean), audit.unregister_table(regclass), audit.on_ddl(), audit.on_drop(),
    audit.history(text, text, jsonb), audit.history(regclass, jsonb) FROM PUBLIC;
DO $pgx$
DECLARE
    v_installing boolean := pg_catalog.current_setting('pgx.audit_installing', true) OPERATOR(pg_catalog.=) 'true';
    g record;
BEGIN
    FOR g IN
        SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind, c.oid::regclass::text AS obj,
               a.grantee, c.relowner AS owner, a.privilege_type
          FROM pg_catalog.pg_class AS c, pg_catalog.aclexplode(c.relacl) AS a
         WHERE c.relnamespace OPERATOR(pg_catalog.=) 'audit'::pg_catalog.regnamespace AND c.relkind IN ('r', 'S')
           AND (v_installing OR a.privilege_type OPERATOR(pg_catalog.<>) 'SELECT')
        UNION ALL
        SELECT 'FUNCTION', p.oid::regprocedure::text, a.grantee, p.proowner, a.privilege_type
          FROM pg_catalog.pg_proc AS p, pg_catalog.aclexplode(p.proacl) AS a
         WHERE p.pronamespace OPERATOR(pg_catalog.=) 'audit'::pg_catalog.regnamespace
           AND (v_installing OR p.prosecdef)
        UNION ALL
        SELECT 'SCHEMA', pg_catalog.quote_ident(n.nspname), a.grantee, n.nspowner, a.privilege_type
          FROM pg_catalog.pg_namespace AS n, pg_catalog.aclexplode(n.nspacl) AS a
         WHERE n.oid OPERATOR(pg_catalog.=) 'audit'::pg_catalog.regnamespace
           AND (v_installing OR a.privilege_type OPERATOR(pg_catalog.=) 'CREATE')
    LOOP
        CONTINUE WHEN g.grantee OPERATOR(pg_catalog.=) g.owner OR g.grantee OPERATOR(pg_catalog.=) 0;
        EXECUTE pg_catalog.format('REVOKE %s ON %s %s FROM %I', g.privilege_type, g.kind, g.obj,
                                  pg_catalog.pg_get_userbyid(g.grantee));
    END LOOP;
END
$pgx$;
