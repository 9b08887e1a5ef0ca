-- pgx 0.1.0: pattern "audit_install" (up)
-- pgx provides: "audit" 2
-- schema: "Sales"
-- param audit_schema = "audit"
-- param actor_setting = "app.user_id"
-- param actor_type = "uuid"
-- param lock_timeout = "100ms"

SET LOCAL lock_timeout = '100ms';

-- ---------------------------------------------------------------------------------------------
-- Shared audit infrastructure, version 2, in schema audit. Changed only by explicit
-- upgrade migrations (pgx new audit_upgrade).
-- ---------------------------------------------------------------------------------------------

-- Installed once: an infrastructure already there (of any version, embedded in older audit
-- migrations too) changes only through an upgrade migration.
DO $pgx$
BEGIN
    IF pg_catalog.to_regprocedure('audit.settings()') IS NOT NULL THEN
        RAISE EXCEPTION 'the audit infrastructure is installed in schema % already, with settings %', 'audit', audit.settings()
            USING HINT = 'change it with an upgrade migration (pgx new audit_upgrade), or remove it first (pgx new audit_uninstall)';
    END IF;
END
$pgx$;

DO $pgx$
DECLARE
    owner_oid oid;
    others text;
BEGIN
    SELECT n.nspowner INTO owner_oid FROM pg_catalog.pg_namespace n WHERE n.nspname = 'audit';
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- Superusers can do anything anyway; any other owner could replace what pgx puts there.
    IF owner_oid <> pg_catalog.to_regrole(CURRENT_USER)
       AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = owner_oid) THEN
        RAISE EXCEPTION 'schema % belongs to role %, not to %: pgx keeps objects there that run with elevated rights, and the owner of a schema can drop and replace what is in it',
            'audit', pg_catalog.pg_get_userbyid(owner_oid), CURRENT_USER
            USING HINT = pg_catalog.format('ALTER SCHEMA %I OWNER TO %I (as a superuser), or use another schema', 'audit', CURRENT_USER);
    END IF;
    -- Roles other than the owner that can create objects in it, or act as its owner.
    SELECT pg_catalog.string_agg(DISTINCT w.name, ', ' ORDER BY w.name) INTO others
    FROM (
        SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END AS name, a.grantee
        FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
        WHERE n.nspname = 'audit' AND a.privilege_type = 'CREATE' AND a.grantee <> owner_oid
        UNION ALL
        SELECT r.rolname::text, r.oid FROM pg_catalog.pg_roles r
        WHERE r.oid <> owner_oid AND pg_catalog.pg_has_role(r.oid, owner_oid, 'MEMBER')
    ) w
    WHERE w.grantee = 0 OR NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = w.grantee);
    IF others IS NOT NULL THEN
        RAISE EXCEPTION 'schema % is writable by % besides its owner %: pgx keeps objects there that run with elevated rights, and a role that can create objects in a schema can plant look-alikes of them',
            'audit', others, pg_catalog.pg_get_userbyid(owner_oid)
            USING HINT = pg_catalog.format('REVOKE CREATE ON SCHEMA %I FROM ...; revoke memberships in role %I', 'audit', pg_catalog.pg_get_userbyid(owner_oid));
    END IF;
END
$pgx$;

CREATE SCHEMA IF NOT EXISTS audit;

-- What this infrastructure was installed with, and its version: read by every audit migration,
-- which refuses to run on an older version.
CREATE FUNCTION audit.settings() RETURNS pg_catalog.jsonb
    LANGUAGE sql
    IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $pgx$ SELECT pg_catalog.jsonb_build_object('version', 2, 'actor_setting', 'app.user_id', 'actor_type', 'uuid') $pgx$;

-- Which tables are audited, and how. Columns are kept as attribute numbers, so renaming a
-- column can never make an excluded one appear in the log, and excluded ones by name as well,
-- so a column dropped and added again under an excluded name stays excluded. key_columns NULL
-- means the primary key, as it is when each statement runs.
CREATE TABLE audit.audited_table (
    relid            regclass PRIMARY KEY,
    key_columns      smallint[],
    excluded_columns smallint[] NOT NULL DEFAULT '{}',
    skip_unchanged   boolean NOT NULL,
    excluded_names   text[] NOT NULL DEFAULT '{}',
    max_value_bytes  integer NOT NULL DEFAULT 1048576
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
    actor            pg_catalog.uuid,
    db_role          text NOT NULL,
    application_name text
);

COMMENT ON TABLE audit.log IS 'Append-only audit trail written by pgx audit triggers. logged_at is the transaction time; row_key is the row''s key as JSON (after the statement; before it for DELETE); old_key is set when an UPDATE changed the key; partition_name is set when the statement named a partition rather than the audited table.';

-- History look-ups are by key: a btree on the key's JSON text cut to 200 characters (at most
-- 800 bytes, far below the 2,704-byte limit of a btree entry, so no key can ever fail the
-- write; keys sharing their first 200 characters are told apart by the recheck on row_key).
-- Identity, serial and time-ordered keys grow, so new entries land at the right edge of the
-- index, where a hash index writes at random places (benches/audit_variants.sh: bulk INSERT
-- 1.27x the floor instead of 1.59x). Tables sharing a key value are told apart by the recheck
-- on schema_name and table_name. BRIN serves time ranges at almost no cost.
CREATE INDEX log_logged_at_brin ON audit.log USING brin (logged_at);
CREATE INDEX log_row_key ON audit.log (pg_catalog.left(row_key::text, 200) COLLATE "C");
CREATE INDEX log_old_key ON audit.log (pg_catalog.left(old_key::text, 200) COLLATE "C") WHERE old_key IS NOT NULL;
CREATE INDEX log_truncate ON audit.log (schema_name, table_name) WHERE operation = 'TRUNCATE';

CREATE TRIGGER log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit.log
    FOR EACH STATEMENT EXECUTE FUNCTION audit.forbid_change();

-- Fires even with session_replication_role = replica.
ALTER TABLE audit.log ENABLE ALWAYS TRIGGER log_append_only;

-- Whether converting a value of this type with to_jsonb() could look up a cast: to_jsonb()
-- (like to_json) uses a cast to json for any type that is not built in and is neither a domain
-- (its base type counts), an array (its element type counts) nor a composite (each field
-- counts). Such a cast may be a function of the type's owner, which must never run with the
-- capture function's rights, so values of these types are converted by their output function
-- instead. Built-in types (oid below 16384) cannot have casts a non-superuser created: a cast
-- needs the ownership of its source or target type.
CREATE OR REPLACE FUNCTION audit.unsafe_type(typ oid) RETURNS boolean
    LANGUAGE sql
    STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH RECURSIVE reached (oid) AS (
        SELECT typ
        UNION
        SELECT n.next
          FROM reached AS r
          JOIN pg_catalog.pg_type AS t ON t.oid OPERATOR(pg_catalog.=) r.oid
         CROSS JOIN LATERAL (
               SELECT t.typbasetype WHERE t.typtype OPERATOR(pg_catalog.=) 'd'
               UNION ALL
               SELECT t.typelem WHERE t.typsubscript OPERATOR(pg_catalog.=) 'pg_catalog.array_subscript_handler'::pg_catalog.regproc
               UNION ALL
               SELECT a.atttypid FROM pg_catalog.pg_attribute AS a
                WHERE t.typtype OPERATOR(pg_catalog.=) 'c' AND a.attrelid OPERATOR(pg_catalog.=) t.typrelid
                  AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped) AS n (next)
    )
    SELECT EXISTS (
        SELECT FROM reached AS r JOIN pg_catalog.pg_type AS t ON t.oid OPERATOR(pg_catalog.=) r.oid
         WHERE r.oid OPERATOR(pg_catalog.>=) 16384
           AND t.typtype NOT IN ('c', 'd')
           AND t.typsubscript OPERATOR(pg_catalog.<>) 'pg_catalog.array_subscript_handler'::pg_catalog.regproc);
END;

-- The jsonb object of a row, column by column, as an SQL expression over `rowref` (a value of
-- the row type of table `rel`), built from the catalog (names quoted by format): the columns
-- left out, values of types with a possible user cast (see unsafe_type) as the text of their
-- output function (format's %s; num_nulls tells NULL apart without the composite semantics of
-- IS NULL), and values whose stored size passes max_bytes as a marker with their size
-- and SHA-256 hash. For statements that the plain to_jsonb() of whole rows cannot serve.
CREATE OR REPLACE FUNCTION audit.row_expr(rel oid, rowref text, excluded text[], max_bytes integer) RETURNS text
    LANGUAGE sql
    STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT coalesce(pg_catalog.string_agg(
               pg_catalog.format(
                   'pg_catalog.jsonb_build_object(%L, CASE WHEN pg_catalog.pg_column_size(%s.%I) OPERATOR(pg_catalog.>) %s'
                   ' THEN pg_catalog.jsonb_build_object(''pgx_omitted'', true, ''bytes'', pg_catalog.pg_column_size(%s.%I),'
                   ' ''sha256'', pg_catalog.encode(pg_catalog.sha256(%s), ''hex'')) ELSE pg_catalog.to_jsonb(%s) END)',
                   a.attname, rowref, a.attname, max_bytes, rowref, a.attname,
                   pg_catalog.format('pg_catalog.convert_to(pg_catalog.format(''%%s'', %s.%I), ''UTF8'')', rowref, a.attname),
                   CASE WHEN audit.unsafe_type(a.atttypid)
                        THEN pg_catalog.format('CASE WHEN pg_catalog.num_nulls(%s.%I) OPERATOR(pg_catalog.=) 0 THEN pg_catalog.format(''%%s'', %s.%I) END',
                                               rowref, a.attname, rowref, a.attname)
                        ELSE pg_catalog.format('%s.%I', rowref, a.attname) END),
               ' OPERATOR(pg_catalog.||) ' ORDER BY a.attnum), '''{}''::pg_catalog.jsonb')
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid OPERATOR(pg_catalog.=) rel AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
       AND a.attname OPERATOR(pg_catalog.<>) ALL (excluded);
END;

-- A row's jsonb with every value whose size passes max_bytes replaced by a marker (its size
-- and the SHA-256 of its text, as row_expr records them): for the rare rows larger than
-- max_bytes, whose whole-row conversion jsonb could still hold.
CREATE OR REPLACE FUNCTION audit.row_json(j pg_catalog.jsonb, max_bytes integer) RETURNS pg_catalog.jsonb
    LANGUAGE sql
    IMMUTABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT pg_catalog.jsonb_object_agg(e.key,
               CASE WHEN pg_catalog.pg_column_size(e.value) OPERATOR(pg_catalog.>) max_bytes
                    THEN pg_catalog.jsonb_build_object('pgx_omitted', true, 'bytes', pg_catalog.pg_column_size(e.value),
                             'sha256', pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(e.value OPERATOR(pg_catalog.#>>) '{}', 'UTF8')), 'hex'))
                    ELSE e.value END)
      FROM pg_catalog.jsonb_each(j) AS e;
END;

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
--
-- Rows become jsonb in one of two ways. The fast one, to_jsonb() of the whole row, serves
-- tables whose column types are all safe (see unsafe_type) and rows whose stored size is within
-- max_value_bytes. A table with a column of a type to_jsonb() would look up a cast for (an
-- enum, a range... that is not built in: its owner can give it a cast running any code) has
-- every statement converted by row_expr, which never looks a cast up; a row above
-- max_value_bytes has its large values replaced by markers (row_json). Should a value not be
-- representable at all (a jsonb string is limited to 256 MB), the statement is recorded again
-- by row_expr, with every value above 1 kB a marker, never converted: the user's write never
-- fails.
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
    v_max        integer;
    v_foreign    boolean;
    v_unsafe     boolean := false;
    v_new        pg_catalog.jsonb[];
    v_old        pg_catalog.jsonb[];
    v_paired     boolean;
    v_raw        text;
    v_actor      pg_catalog.uuid;
    v_role       text;
    v_app        text;
    v_txid       xid8;
    v_at         timestamptz;
BEGIN
    -- The audited table (this one, or the nearest audited ancestor of this partition) and the
    -- column names to leave out (by attribute number, and by name: a column added again under
    -- an excluded name stays out) and to key rows by. Partitions have the audited table's
    -- column names, so names resolved there fit the rows of either. Without a key (the primary
    -- key was dropped since), row_key is NULL. One query with no parameter but the table, so
    -- PL/pgSQL keeps one generic plan instead of planning it again on every statement.
    SELECT r.relid::oid, n.nspname::text, c.relname::text, r.skip_unchanged, k.excluded, k.key,
           CASE WHEN k.key IS NOT NULL THEN k.non_key END, r.max_value_bytes, k.foreign_types
      INTO v_relid, v_schema, v_table, v_skip, v_excluded, v_key, v_non_key, v_max, v_foreign
      FROM (SELECT TG_RELID::regclass, 0::bigint
            UNION ALL
            SELECT * FROM pg_catalog.pg_partition_ancestors(TG_RELID) WITH ORDINALITY) AS a (relid, depth)
      JOIN audit.audited_table AS r ON r.relid OPERATOR(pg_catalog.=) a.relid
      JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) r.relid
      JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
      LEFT JOIN pg_catalog.pg_index AS pk ON pk.indrelid OPERATOR(pg_catalog.=) r.relid AND pk.indisprimary
     CROSS JOIN LATERAL (
            SELECT coalesce(pg_catalog.array_agg(t.attname::text) FILTER (WHERE t.attnum OPERATOR(pg_catalog.=) ANY (r.excluded_columns)
                                                                            OR t.attname OPERATOR(pg_catalog.=) ANY (r.excluded_names)), '{}') AS excluded,
                   pg_catalog.array_agg(t.attname::text) FILTER (WHERE t.attnum OPERATOR(pg_catalog.=) ANY (coalesce(r.key_columns, pk.indkey::smallint[]))) AS key,
                   coalesce(pg_catalog.array_agg(t.attname::text) FILTER (WHERE t.attnum OPERATOR(pg_catalog.<>) ALL (coalesce(r.key_columns, pk.indkey::smallint[]))), '{}') AS non_key,
                   coalesce(pg_catalog.bool_or(t.atttypid OPERATOR(pg_catalog.>=) 16384), false) AS foreign_types
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
    -- Only a table with a column of a type that is not built in (a domain, an enum...) pays for
    -- finding out whether to_jsonb() could meet a cast there. The rows' own type (this table's
    -- or partition's) is what the transition tables hold.
    IF v_foreign THEN
        SELECT pg_catalog.bool_or(audit.unsafe_type(a.atttypid)) INTO v_unsafe
          FROM pg_catalog.pg_attribute AS a
         WHERE a.attrelid OPERATOR(pg_catalog.=) TG_RELID AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
    END IF;

    -- Never fails the user's write: unset, reset, empty or malformed means no actor.
    v_raw := NULLIF(pg_catalog.btrim(pg_catalog.current_setting('app.user_id', true)), '');
    IF v_raw IS NOT NULL THEN
        BEGIN
            v_actor := v_raw::pg_catalog.uuid;
        EXCEPTION WHEN data_exception THEN
            v_actor := NULL;
        END;
    END IF;
    -- The role the session acts as (SET ROLE included); current_user is this function's owner.
    v_role := pg_catalog.current_setting('role');
    IF v_role OPERATOR(pg_catalog.=) 'none' THEN
        v_role := SESSION_USER::text;
    END IF;
    v_app := NULLIF(pg_catalog.current_setting('application_name'), '');
    v_txid := pg_catalog.pg_current_xact_id();
    v_at := pg_catalog.now();
    IF TG_OP OPERATOR(pg_catalog.=) 'TRUNCATE' THEN
        INSERT INTO audit.log (txid, logged_at, schema_name, table_name, partition_name, operation,
                               actor, db_role, application_name)
        VALUES (v_txid, v_at, v_schema, v_table, v_partition, 'TRUNCATE', v_actor, v_role, v_app);
        RETURN NULL;
    END IF;
    -- PostgreSQL appends each updated row's old and new versions to the two transition tables
    -- together, so the n-th rows of both are the same row, unless a row moved to another
    -- partition whose BEFORE INSERT trigger dropped it: then there is an old row without a new
    -- one, every later pair would be shifted, and rows are paired by key instead.
    IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
        v_paired := (SELECT pg_catalog.count(*) FROM old_rows) OPERATOR(pg_catalog.=) (SELECT pg_catalog.count(*) FROM new_rows);
    END IF;

    <<record>>
    FOR v_attempt IN 1..2 LOOP
        BEGIN
            IF v_unsafe THEN
                -- Row by row in scan order, which the fast path below numbers the same way (the
                -- columns named directly: a whole-row value of a transition table that has
                -- dropped columns loses fields selected by name).
                IF TG_OP IN ('INSERT', 'UPDATE') THEN
                    EXECUTE 'SELECT pg_catalog.array_agg(' OPERATOR(pg_catalog.||)
                            audit.row_expr(TG_RELID, 't', v_excluded, v_max) OPERATOR(pg_catalog.||)
                            ') FROM new_rows AS t'
                       INTO v_new;
                END IF;
                IF TG_OP IN ('DELETE', 'UPDATE') THEN
                    EXECUTE 'SELECT pg_catalog.array_agg(' OPERATOR(pg_catalog.||)
                            audit.row_expr(TG_RELID, 't', v_excluded, v_max) OPERATOR(pg_catalog.||)
                            ') FROM old_rows AS t'
                       INTO v_old;
                END IF;
            END IF;

            -- Each branch below that reads the rows themselves runs only when v_unsafe is false
            -- (a one-time filter), so to_jsonb() never sees a row of an unsafe table. OFFSET 0
            -- keeps each row's JSON computed once.
            IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
                INSERT INTO audit.log (txid, logged_at, schema_name, table_name, partition_name, operation,
                                       row_key, new_row, actor, db_role, application_name)
                SELECT v_txid, v_at, v_schema, v_table, v_partition, 'INSERT',
                       x.j OPERATOR(pg_catalog.-) v_non_key, x.j, v_actor, v_role, v_app
                  FROM (SELECT CASE WHEN pg_catalog.pg_column_size(s.r) OPERATOR(pg_catalog.<=) v_max
                                    THEN pg_catalog.to_jsonb(s.r) OPERATOR(pg_catalog.-) v_excluded
                                    ELSE audit.row_json(pg_catalog.to_jsonb(s.r) OPERATOR(pg_catalog.-) v_excluded, v_max) END AS j
                          FROM (SELECT t AS r FROM new_rows AS t WHERE NOT v_unsafe OFFSET 0) AS s
                        UNION ALL
                        SELECT u.j FROM pg_catalog.unnest(v_new) AS u (j) WHERE v_unsafe
                        OFFSET 0) AS x;
            ELSIF TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
                INSERT INTO audit.log (txid, logged_at, schema_name, table_name, partition_name, operation,
                                       row_key, old_row, actor, db_role, application_name)
                SELECT v_txid, v_at, v_schema, v_table, v_partition, 'DELETE',
                       x.j OPERATOR(pg_catalog.-) v_non_key, x.j, v_actor, v_role, v_app
                  FROM (SELECT CASE WHEN pg_catalog.pg_column_size(s.r) OPERATOR(pg_catalog.<=) v_max
                                    THEN pg_catalog.to_jsonb(s.r) OPERATOR(pg_catalog.-) v_excluded
                                    ELSE audit.row_json(pg_catalog.to_jsonb(s.r) OPERATOR(pg_catalog.-) v_excluded, v_max) END AS j
                          FROM (SELECT t AS r FROM old_rows AS t WHERE NOT v_unsafe OFFSET 0) AS s
                        UNION ALL
                        SELECT u.j FROM pg_catalog.unnest(v_old) AS u (j) WHERE v_unsafe
                        OFFSET 0) AS x;
            ELSE
                -- An UPDATE: pairs by position, or by key (see v_paired). A row without a
                -- partner is recorded as what happened to it: an old row alone was deleted (its
                -- move was dropped), a new row alone was inserted; without a key every row of
                -- such a statement is.
                WITH nr AS (
                    SELECT s.n, CASE WHEN pg_catalog.pg_column_size(s.r) OPERATOR(pg_catalog.<=) v_max
                                     THEN pg_catalog.to_jsonb(s.r) OPERATOR(pg_catalog.-) v_excluded
                                     ELSE audit.row_json(pg_catalog.to_jsonb(s.r) OPERATOR(pg_catalog.-) v_excluded, v_max) END AS j
                      FROM (SELECT pg_catalog.row_number() OVER () AS n, t AS r FROM new_rows AS t WHERE NOT v_unsafe OFFSET 0) AS s
                    UNION ALL
                    SELECT u.n, u.j FROM pg_catalog.unnest(v_new) WITH ORDINALITY AS u (j, n) WHERE v_unsafe
                ), orow AS (
                    SELECT s.n, CASE WHEN pg_catalog.pg_column_size(s.r) OPERATOR(pg_catalog.<=) v_max
                                     THEN pg_catalog.to_jsonb(s.r) OPERATOR(pg_catalog.-) v_excluded
                                     ELSE audit.row_json(pg_catalog.to_jsonb(s.r) OPERATOR(pg_catalog.-) v_excluded, v_max) END AS j
                      FROM (SELECT pg_catalog.row_number() OVER () AS n, t AS r FROM old_rows AS t WHERE NOT v_unsafe OFFSET 0) AS s
                    UNION ALL
                    SELECT u.n, u.j FROM pg_catalog.unnest(v_old) WITH ORDINALITY AS u (j, n) WHERE v_unsafe
                ), pairs AS (
                    SELECT nr.j AS nj, orow.j AS oj
                      FROM nr JOIN orow ON orow.n OPERATOR(pg_catalog.=) nr.n
                     WHERE v_paired
                    UNION ALL
                    SELECT nr.j, orow.j
                      FROM nr FULL JOIN orow
                        ON (orow.j OPERATOR(pg_catalog.-) v_non_key) OPERATOR(pg_catalog.=) (nr.j OPERATOR(pg_catalog.-) v_non_key)
                     WHERE NOT v_paired
                )
                INSERT INTO audit.log (txid, logged_at, schema_name, table_name, partition_name, operation,
                                       row_key, old_key, new_row, old_row, changed_columns, actor, db_role, application_name)
                SELECT v_txid, v_at, v_schema, v_table, v_partition,
                       CASE WHEN q.oj IS NULL THEN 'INSERT' WHEN q.nj IS NULL THEN 'DELETE' ELSE 'UPDATE' END,
                       coalesce(q.nj, q.oj) OPERATOR(pg_catalog.-) v_non_key,
                       CASE WHEN q.changed OPERATOR(pg_catalog.&&) v_key THEN q.oj OPERATOR(pg_catalog.-) v_non_key END,
                       q.nj, q.oj, q.changed, v_actor, v_role, v_app
                  FROM (SELECT p.nj, p.oj,
                               CASE WHEN p.nj IS NOT NULL AND p.oj IS NOT NULL THEN
                                   ARRAY(SELECT k FROM pg_catalog.jsonb_object_keys(p.nj) AS k
                                          WHERE p.nj OPERATOR(pg_catalog.->) k IS DISTINCT FROM p.oj OPERATOR(pg_catalog.->) k)
                               END AS changed
                          FROM pairs AS p
                         WHERE NOT v_skip OR p.nj IS NULL OR p.oj IS NULL OR p.nj OPERATOR(pg_catalog.<>) p.oj
                        OFFSET 0) AS q;
            END IF;
            EXIT record;
        EXCEPTION WHEN program_limit_exceeded THEN
            -- A value too large for jsonb: record the statement again with every value above
            -- 1 kB as a marker (the values above max_value_bytes are markers already).
            IF v_attempt OPERATOR(pg_catalog.=) 2 THEN
                RAISE;
            END IF;
            v_max := LEAST(v_max, 1024);
            v_unsafe := true;
        END;
    END LOOP;
    RETURN NULL;
END
$pgx$;

-- Gives every partition below an audited table (at any depth, foreign tables aside: they
-- cannot have transition tables) the audit triggers it lacks. A statement on a partitioned
-- table fires only that table's statement triggers, and one naming a partition only the
-- partition's, so each level needs its own. A trigger that has an audit trigger's name is
-- checked, not trusted: one that is not exactly the audit trigger (function, event, timing,
-- level, transition tables) stops the statement, naming it.
CREATE OR REPLACE FUNCTION audit.attach_partitions(tbl regclass) RETURNS void
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $pgx$
DECLARE
    p regclass;
    d record;
    v_found record;
BEGIN
    FOR p IN
        SELECT t.relid
          FROM pg_catalog.pg_partition_tree(tbl) AS t
          JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) t.relid
         WHERE t.relid OPERATOR(pg_catalog.<>) tbl AND c.relkind IN ('r', 'p')
         ORDER BY t.level
    LOOP
        -- tgtype: 4 INSERT, 8 DELETE, 16 UPDATE, 32 TRUNCATE; AFTER and FOR EACH STATEMENT are
        -- the absence of bits 2 (BEFORE), 64 (INSTEAD OF) and 1 (ROW).
        FOR d IN
            SELECT * FROM (VALUES ('audit_insert', 4::int2, 'INSERT', NULL::name, 'new_rows'::name),
                                  ('audit_update', 16::int2, 'UPDATE', 'old_rows'::name, 'new_rows'::name),
                                  ('audit_delete', 8::int2, 'DELETE', 'old_rows'::name, NULL::name),
                                  ('audit_truncate', 32::int2, 'TRUNCATE', NULL::name, NULL::name)) AS v (name, type, event, old_table, new_table)
        LOOP
            SELECT g.tgfoid, g.tgtype, g.tgoldtable, g.tgnewtable INTO v_found
              FROM pg_catalog.pg_trigger AS g
             WHERE g.tgrelid OPERATOR(pg_catalog.=) p AND g.tgname OPERATOR(pg_catalog.=) d.name;
            IF NOT FOUND THEN
                EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER %s ON %s%s FOR EACH STATEMENT EXECUTE FUNCTION %s()',
                                          d.name, d.event, p,
                                          CASE WHEN d.old_table IS NOT NULL OR d.new_table IS NOT NULL THEN
                                              ' REFERENCING' OPERATOR(pg_catalog.||)
                                              coalesce(' OLD TABLE AS ' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(d.old_table), '') OPERATOR(pg_catalog.||)
                                              coalesce(' NEW TABLE AS ' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(d.new_table), '')
                                          ELSE '' END,
                                          'audit.capture');
            ELSIF v_found.tgfoid OPERATOR(pg_catalog.<>) 'audit.capture()'::pg_catalog.regprocedure
               OR v_found.tgtype OPERATOR(pg_catalog.<>) d.type
               OR v_found.tgoldtable IS DISTINCT FROM d.old_table
               OR v_found.tgnewtable IS DISTINCT FROM d.new_table THEN
                RAISE EXCEPTION 'audit: % has a trigger % that is not the audit trigger: it runs %, and the audit trigger runs % AFTER % FOR EACH STATEMENT',
                    p, pg_catalog.quote_ident(d.name), v_found.tgfoid::pg_catalog.regproc, 'audit.capture', d.event
                    USING HINT = 'drop or rename that trigger, then attach the partition again';
            END IF;
        END LOOP;
    END LOOP;
END
$pgx$;

-- Validates and records a table's audit settings, and audits its existing partitions; the
-- migration then creates the table's own triggers. Errors here stop the migration before any
-- trigger exists.
CREATE OR REPLACE FUNCTION audit.register_table(tbl regclass, key_columns text[], excluded_columns text[], skip_unchanged boolean,
                                             max_value_bytes integer)
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

    IF max_value_bytes IS NULL OR max_value_bytes OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'audit: max_value_bytes must be a positive number of bytes, not %', max_value_bytes;
    END IF;

    DELETE FROM audit.audited_table AS r WHERE r.relid OPERATOR(pg_catalog.=) tbl;
    INSERT INTO audit.audited_table (relid, key_columns, excluded_columns, skip_unchanged, excluded_names, max_value_bytes)
    VALUES (tbl, v_key, v_excluded, skip_unchanged,
            ARRAY(SELECT DISTINCT u.name FROM pg_catalog.unnest(excluded_columns) AS u (name) ORDER BY 1), max_value_bytes);
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
-- dropped or renamed table can still be read; the key as recorded (see row_key), compared as
-- text first, which the key indexes serve (an unconstrained numeric key must be given with its
-- recorded scale: 1.50 is not found as 1.5).
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
           AND ((pg_catalog.left(l.row_key::text, 200) COLLATE "C" OPERATOR(pg_catalog.=) pg_catalog.left(history.key::text, 200)
                 AND l.row_key OPERATOR(pg_catalog.=) history.key)
             OR (pg_catalog.left(l.old_key::text, 200) COLLATE "C" OPERATOR(pg_catalog.=) pg_catalog.left(history.key::text, 200)
                 AND l.old_key OPERATOR(pg_catalog.=) history.key))
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
    SELECT n.nspname::text, c.relname::text INTO v_schema, v_table
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
-- even reading it is for the roles named as readers. An upgrade revokes only what no reader
-- has (so readers keep SELECT and EXECUTE on the history functions).
REVOKE ALL ON SCHEMA audit FROM PUBLIC;
REVOKE ALL ON TABLE audit.log, audit.audited_table FROM PUBLIC;
REVOKE ALL ON ALL ROUTINES IN SCHEMA audit FROM PUBLIC;
DO $pgx$
DECLARE
    v_installing boolean := true;
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
