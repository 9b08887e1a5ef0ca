#!/usr/bin/env bash
# Capture variants of the audit log, measured side by side in one run against the floor (the
# cheapest statement-level trigger writing one jsonb row per row, no index: benches/audit.sh's
# baseline) and against the table unaudited (issue 11.5 research).
#
#   benches/audit_variants.sh                         # every variant, 200,000 rows, 3 rounds
#   VARIANTS="floor pgx hash64" ROWS=50000 ROUNDS=1 HISTORY=0 benches/audit_variants.sh
#
# Each variant lives in a database of its own (pgx_bench_av_<variant>) holding the same table
# `t`, a log named audit.log and the capture function audit.capture(). The pgx variants start
# from a copy of the capture function `pgx new audit` rendered before issue 11 (kept here
# verbatim, so the baseline does not move when the templates change) and change one thing each:
#
#   plain         no audit at all
#   floor         statement-level trigger, key + row as jsonb, no index, no actor
#   floor_hash    floor plus a hash index on the key (the issue's 3.9x)
#   pgx           today's capture, log and indexes (hash indexes on row_key and old_key)
#   pgx_noindex   today's capture without the two key indexes: what they cost
#   pgx_nochanged today's capture not computing changed_columns: what that costs an UPDATE
#   pgx_noset     today's capture without the SET clauses but search_path (timezone etc.):
#                 what switching settings on every call costs (not a candidate: they make keys
#                 compare equal across sessions)
#   pgx_nolookup  today's capture with the per-statement registry query replaced by constants
#                 (as trigger arguments or a cache would give them): what the query costs
#   hash64        today's capture, btree on jsonb_hash_extended(key, 0) instead of hash on jsonb
#   keytext       today's capture, btree on left(key::text, 200) COLLATE "C" (increasing keys;
#                 200 characters are at most 800 bytes, far below the 2.7 kB btree entry limit,
#                 so no key can fail the write: longer keys share an entry prefix and are told
#                 apart by the recheck on row_key)
#   lean          hash64 index, fewer per-row expressions: a single-column key is built with
#                 jsonb_build_object(col, row -> col) instead of row - <every other column>,
#                 and the actor is parsed without a subtransaction when it is plainly numeric
#   lean_sorted   lean, writing the log in key-hash order
#   lean_keytext  lean's capture with keytext's index
#   castcheck     pgx plus a per-statement check that no column type (through domains, arrays,
#                 composites, ranges, at any depth) has a user-defined cast to json/jsonb
#                 (issue 9.1): the check's cost on single-row writes
#
# Bulk INSERT and UPDATE (one statement, ROWS rows) and single-row INSERT and UPDATE
# transactions (pgbench, one client, synchronous_commit off), medians of ROUNDS rounds, the
# variants alternating within each round; the load average is printed per round. Then the plan
# of a look-up by key in each variant's log (EXPLAIN), and checks that every variant logged
# every row.
#
# Needs psql and pgbench on PATH and a PostgreSQL superuser in DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/postgres).
set -euo pipefail

ALL="plain floor floor_hash pgx pgx_noindex pgx_nochanged pgx_noset pgx_nolookup hash64 keytext lean lean_sorted lean_keytext castcheck"
VARIANTS=${VARIANTS:-$ALL}
ROWS=${ROWS:-200000}
ROUNDS=${ROUNDS:-3}
HISTORY=${HISTORY:-1000000}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
ADMIN_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
BASE="${ADMIN_URL%/*}"

export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -d "$ADMIN_URL" "$@"; }
psql_v() { local v=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -d "$BASE/pgx_bench_av_$v" "$@"; }
load() { cut -d' ' -f1 /proc/loadavg; }

WORK=$(mktemp -d)
cleanup() {
    rm -rf "$WORK"
    for v in $VARIANTS tpl_plain tpl_floor tpl_pgx; do
        psql_admin -c "DROP DATABASE IF EXISTS pgx_bench_av_$v WITH (FORCE)" >/dev/null 2>&1 || true
    done
}
trap cleanup EXIT

TABLE='CREATE TABLE t (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL,
    status      text NOT NULL,
    amount      numeric(12,2) NOT NULL,
    note        text,
    created_at  timestamptz NOT NULL DEFAULT now()
);'

# ---------------------------------------------------------------------------------------------
# The floor.
# ---------------------------------------------------------------------------------------------
floor_log_sql() {
    cat <<'SQL'
CREATE SCHEMA audit;
CREATE TABLE audit.log (
    id bigint GENERATED ALWAYS AS IDENTITY, txid xid8, logged_at timestamptz, schema_name text,
    table_name text, operation text, row_key jsonb, new_row jsonb, old_row jsonb);
SQL
}
floor_sql() {
    cat <<'SQL'
CREATE OR REPLACE FUNCTION audit.capture() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO audit.log (txid, logged_at, schema_name, table_name, operation, row_key, new_row)
        SELECT pg_current_xact_id(), now(), TG_TABLE_SCHEMA, TG_TABLE_NAME, 'INSERT',
               jsonb_build_object('id', n.id), to_jsonb(n)
          FROM new_rows AS n;
    ELSE
        INSERT INTO audit.log (txid, logged_at, schema_name, table_name, operation, row_key, new_row, old_row)
        SELECT pg_current_xact_id(), now(), TG_TABLE_SCHEMA, TG_TABLE_NAME, 'UPDATE',
               jsonb_build_object('id', (n.r).id), to_jsonb(n.r), to_jsonb(o.r)
          FROM (SELECT row_number() OVER () AS rn, t AS r FROM new_rows AS t) AS n
          JOIN (SELECT row_number() OVER () AS rn, t AS r FROM old_rows AS t) AS o USING (rn);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER capture_insert AFTER INSERT ON t REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION audit.capture();
CREATE TRIGGER capture_update AFTER UPDATE ON t REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION audit.capture();
SQL
}

# ---------------------------------------------------------------------------------------------
# pgx: the log and registry as `pgx new audit` created them before issue 11 (without the
# append-only trigger, which fires on UPDATE/DELETE/TRUNCATE of the log only), then the key
# indexes of the variant.
# ---------------------------------------------------------------------------------------------
pgx_log_sql() {
    cat <<'SQL'
CREATE SCHEMA audit;
CREATE TABLE audit.audited_table (
    relid            regclass PRIMARY KEY,
    key_columns      smallint[],
    excluded_columns smallint[] NOT NULL DEFAULT '{}',
    skip_unchanged   boolean NOT NULL
);
INSERT INTO audit.audited_table (relid, skip_unchanged) VALUES ('public.t', true);
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
CREATE INDEX log_logged_at_brin ON audit.log USING brin (logged_at);
CREATE INDEX log_truncate ON audit.log (schema_name, table_name) WHERE operation = 'TRUNCATE';
SQL
}

# Key indexes, and the look-up by key each one serves ($2: the id whose key to look up).
index_sql() {
    case $1 in
    today) cat <<'SQL' ;;
CREATE INDEX log_row_key ON audit.log USING hash (row_key);
CREATE INDEX log_old_key ON audit.log USING hash (old_key) WHERE old_key IS NOT NULL;
SQL
    hash64) cat <<'SQL' ;;
CREATE INDEX log_row_key ON audit.log (pg_catalog.jsonb_hash_extended(row_key, 0));
CREATE INDEX log_old_key ON audit.log (pg_catalog.jsonb_hash_extended(old_key, 0)) WHERE old_key IS NOT NULL;
SQL
    keytext) cat <<'SQL' ;;
CREATE INDEX log_row_key ON audit.log (pg_catalog.left(row_key::text, 200) COLLATE "C");
CREATE INDEX log_old_key ON audit.log (pg_catalog.left(old_key::text, 200) COLLATE "C") WHERE old_key IS NOT NULL;
SQL
    none) ;;
    esac
}
lookup_sql() {
    local k="'{\"id\": $2}'::jsonb" where
    case $1 in
    floor) where="row_key = $k" ;;
    today | none) where="row_key = $k OR old_key = $k" ;;
    hash64) where="(jsonb_hash_extended(row_key, 0) = jsonb_hash_extended($k, 0) AND row_key = $k)
            OR (jsonb_hash_extended(old_key, 0) = jsonb_hash_extended($k, 0) AND old_key = $k)" ;;
    keytext) where="(left(row_key::text, 200) COLLATE \"C\" = left($k::text, 200) AND row_key = $k)
             OR (left(old_key::text, 200) COLLATE \"C\" = left($k::text, 200) AND old_key = $k)" ;;
    esac
    echo "SELECT * FROM audit.log WHERE schema_name = 'public' AND table_name = 't' AND ($where) ORDER BY id"
}

# ---------------------------------------------------------------------------------------------
# The capture function `pgx new audit` rendered before issue 11, copied verbatim into
# benches/audit_capture_v0.sql, cut into pieces at anchor lines; the variants replace or insert
# pieces. piece FROM TO: the lines from the first matching FROM up to (not including) the first
# matching TO after it (TO empty: to the end); fails if an anchor is missing.
# ---------------------------------------------------------------------------------------------
CAPTURE_V0="$(cd "$(dirname "$0")" && pwd)/audit_capture_v0.sql"
piece() {
    awk -v from="$1" -v to="$2" '
        !on && index($0, from) == 1 { on = 1; found = 1 }
        on && to != "" && index($0, to) == 1 { done = 1; exit }
        on { print }
        END { if (!found || (to != "" && !done)) { print "anchor not found: " from " / " to > "/dev/stderr"; exit 1 } }
    ' "$CAPTURE_V0"
}
today_decl() { piece 'CREATE OR REPLACE FUNCTION' 'BEGIN'; }
today_lookup() { piece 'BEGIN' "    -- Never fails the user's write"; }
today_actor() { piece "    -- Never fails the user's write" '    -- The role the session acts as'; }
today_env() { piece '    -- The role the session acts as' '    -- OFFSET 0 keeps'; }
today_insert_update() { piece '    -- OFFSET 0 keeps' "    ELSIF TG_OP OPERATOR(pg_catalog.=) 'DELETE'"; }
today_delete_truncate() { piece "    ELSIF TG_OP OPERATOR(pg_catalog.=) 'DELETE'" ''; }

# pgx_nochanged: today's UPDATE without changed_columns (old_key set when the key's JSON differs).
nochanged_insert_update() {
    today_insert_update | awk '/ELSIF TG_OP OPERATOR\(pg_catalog.=\) .UPDATE. THEN/ {exit} {print}'
    cat <<'SQL'
    ELSIF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
        INSERT INTO audit.log (txid, logged_at, schema_name, table_name, partition_name, operation,
                               row_key, old_key, new_row, old_row, actor, db_role, application_name)
        SELECT v_txid, v_at, v_schema, v_table, v_partition, 'UPDATE',
               q.nk, CASE WHEN q.nk OPERATOR(pg_catalog.<>) q.ok THEN q.ok END,
               q.nj, q.oj, v_actor, v_role, v_app
          FROM (SELECT j.nj, j.oj, j.nj OPERATOR(pg_catalog.-) v_non_key AS nk, j.oj OPERATOR(pg_catalog.-) v_non_key AS ok
                  FROM (SELECT pg_catalog.to_jsonb(n.r) OPERATOR(pg_catalog.-) v_excluded AS nj,
                               pg_catalog.to_jsonb(o.r) OPERATOR(pg_catalog.-) v_excluded AS oj
                          FROM (SELECT pg_catalog.row_number() OVER () AS rn, t AS r FROM new_rows AS t) AS n
                          JOIN (SELECT pg_catalog.row_number() OVER () AS rn, t AS r FROM old_rows AS t) AS o
                            ON o.rn OPERATOR(pg_catalog.=) n.rn
                        OFFSET 0) AS j
                 WHERE NOT v_skip OR j.nj OPERATOR(pg_catalog.<>) j.oj
                OFFSET 0) AS q;
SQL
}

# lean: a single-column key is built from the one value (jsonb_build_object), not by deleting
# every other column from the row's JSON; v_key1 is that column, NULL for composite keys.
lean_key() {
    echo "CASE WHEN v_key1 IS NOT NULL THEN pg_catalog.jsonb_build_object(v_key1, $1 OPERATOR(pg_catalog.->) v_key1) ELSE $1 OPERATOR(pg_catalog.-) v_non_key END"
}
lean_decl() {
    today_decl
    echo "    v_key1       text;"
}
lean_actor() {
    cat <<'SQL'
    v_key1 := CASE WHEN pg_catalog.cardinality(v_key) OPERATOR(pg_catalog.=) 1 THEN v_key[1] END;
    -- Never fails the user's write: unset, reset, empty or malformed means no actor. A plainly
    -- numeric setting is cast without the subtransaction an exception handler costs.
    v_raw := NULLIF(pg_catalog.btrim(pg_catalog.current_setting('app.user_id', true)), '');
    IF v_raw OPERATOR(pg_catalog.~) '^[-+]?[0-9]{1,18}$' THEN
        v_actor := v_raw::pg_catalog.int8;
    ELSIF v_raw IS NOT NULL THEN
        BEGIN
            v_actor := v_raw::pg_catalog.int8;
        EXCEPTION WHEN data_exception THEN
            v_actor := NULL;
        END;
    END IF;
SQL
}
# $1: an ORDER BY clause for the INSERT's rows (lean_sorted), or nothing.
lean_insert_update() {
    cat <<SQL
    IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
        INSERT INTO audit.log (txid, logged_at, schema_name, table_name, partition_name, operation,
                               row_key, new_row, actor, db_role, application_name)
        SELECT v_txid, v_at, v_schema, v_table, v_partition, 'INSERT', x.k, x.j, v_actor, v_role, v_app
          FROM (SELECT y.j, $(lean_key y.j) AS k
                  FROM (SELECT pg_catalog.to_jsonb(t) OPERATOR(pg_catalog.-) v_excluded AS j FROM new_rows AS t OFFSET 0) AS y
                OFFSET 0) AS x
        ${1:+ORDER BY pg_catalog.jsonb_hash_extended(x.k, 0)};
    ELSIF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
        INSERT INTO audit.log (txid, logged_at, schema_name, table_name, partition_name, operation,
                               row_key, old_key, new_row, old_row, changed_columns, actor, db_role, application_name)
        SELECT v_txid, v_at, v_schema, v_table, v_partition, 'UPDATE',
               q.nk, CASE WHEN q.changed OPERATOR(pg_catalog.&&) v_key THEN $(lean_key q.oj) END,
               q.nj, q.oj, q.changed, v_actor, v_role, v_app
          FROM (SELECT j.nj, j.oj, $(lean_key j.nj) AS nk,
                       ARRAY(SELECT k FROM pg_catalog.jsonb_object_keys(j.nj) AS k
                              WHERE j.nj OPERATOR(pg_catalog.->) k IS DISTINCT FROM j.oj OPERATOR(pg_catalog.->) k) AS changed
                  FROM (SELECT pg_catalog.to_jsonb(n.r) OPERATOR(pg_catalog.-) v_excluded AS nj,
                               pg_catalog.to_jsonb(o.r) OPERATOR(pg_catalog.-) v_excluded AS oj
                          FROM (SELECT pg_catalog.row_number() OVER () AS rn, t AS r FROM new_rows AS t) AS n
                          JOIN (SELECT pg_catalog.row_number() OVER () AS rn, t AS r FROM old_rows AS t) AS o
                            ON o.rn OPERATOR(pg_catalog.=) n.rn
                        OFFSET 0) AS j
                 WHERE NOT v_skip OR j.nj OPERATOR(pg_catalog.<>) j.oj
                OFFSET 0) AS q
        ${1:+ORDER BY pg_catalog.jsonb_hash_extended(q.nk, 0)};
SQL
}

# castcheck (issue 9.1): every type to_jsonb() may meet in a row of the table, through domains'
# base types, array elements, range subtypes and composite fields at any depth; refused if one
# that is not built in has a cast to json or jsonb (to_jsonb would call its function with this
# function's rights). One query on the catalogs per statement.
castcheck_sql() {
    cat <<'SQL'
    IF EXISTS (
        WITH RECURSIVE ty (oid) AS (
            SELECT a.atttypid FROM pg_catalog.pg_attribute AS a
             WHERE a.attrelid OPERATOR(pg_catalog.=) TG_RELID AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
            UNION
            SELECT s.oid
              FROM ty JOIN pg_catalog.pg_type AS y ON y.oid OPERATOR(pg_catalog.=) ty.oid
             CROSS JOIN LATERAL (
                    SELECT y.typbasetype WHERE y.typbasetype OPERATOR(pg_catalog.<>) 0
                    UNION ALL SELECT y.typelem WHERE y.typelem OPERATOR(pg_catalog.<>) 0
                    UNION ALL SELECT r.rngsubtype FROM pg_catalog.pg_range AS r WHERE r.rngtypid OPERATOR(pg_catalog.=) y.oid
                    UNION ALL SELECT f.atttypid FROM pg_catalog.pg_attribute AS f
                               WHERE y.typrelid OPERATOR(pg_catalog.<>) 0 AND f.attrelid OPERATOR(pg_catalog.=) y.typrelid
                                 AND f.attnum OPERATOR(pg_catalog.>) 0 AND NOT f.attisdropped) AS s (oid))
        SELECT FROM ty JOIN pg_catalog.pg_cast AS c ON c.castsource OPERATOR(pg_catalog.=) ty.oid
         WHERE ty.oid OPERATOR(pg_catalog.>=) 16384
           AND c.casttarget OPERATOR(pg_catalog.=) ANY ('{json,jsonb}'::pg_catalog.regtype[])
           AND c.castmethod OPERATOR(pg_catalog.=) 'f')
    THEN
        RAISE EXCEPTION 'audit: a column of %.% has a type with a user-defined cast to json', TG_TABLE_SCHEMA, TG_TABLE_NAME;
    END IF;
SQL
}

# pgx_noset: the function's header without the SET clauses but search_path.
noset_decl() {
    today_decl | grep -v -e "SET timezone" -e "SET intervalstyle" -e "SET extra_float_digits" \
        -e "SET bytea_output" -e "SET work_mem" -e "SET jit"
}
# pgx_nolookup: what the registry query finds for table t, as constants.
nolookup_lookup() {
    cat <<'SQL'
BEGIN
    v_relid := TG_RELID;
    v_schema := TG_TABLE_SCHEMA;
    v_table := TG_TABLE_NAME;
    v_skip := true;
    v_excluded := '{}';
    v_key := '{id}';
    v_non_key := '{customer_id,status,amount,note,created_at}';
SQL
}

pgx_sql() { # variant
    local idx=today
    case $1 in
    pgx_noindex) idx=none ;;
    hash64 | lean | lean_sorted) idx=hash64 ;;
    keytext | lean_keytext) idx=keytext ;;
    esac
    index_sql $idx
    case $1 in
    lean | lean_sorted | lean_keytext)
        lean_decl; today_lookup; lean_actor; today_env
        lean_insert_update "$([ "$1" = lean_sorted ] && echo sorted)"
        today_delete_truncate ;;
    *)
        if [ "$1" = pgx_noset ]; then noset_decl; else today_decl; fi
        if [ "$1" = pgx_nolookup ]; then nolookup_lookup; else today_lookup; fi
        if [ "$1" = castcheck ]; then castcheck_sql; fi
        today_actor; today_env
        if [ "$1" = pgx_nochanged ]; then nochanged_insert_update; else today_insert_update; fi
        today_delete_truncate ;;
    esac
    cat <<'SQL'
CREATE TRIGGER audit_insert AFTER INSERT ON t REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION audit.capture();
CREATE TRIGGER audit_update AFTER UPDATE ON t REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION audit.capture();
CREATE TRIGGER audit_delete AFTER DELETE ON t REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION audit.capture();
CREATE TRIGGER audit_truncate AFTER TRUNCATE ON t
    FOR EACH STATEMENT EXECUTE FUNCTION audit.capture();
SQL
}
index_of() {
    case $1 in
    floor | plain | floor_hash) echo floor ;;
    pgx | pgx_nochanged | pgx_noset | pgx_nolookup | castcheck) echo today ;;
    pgx_noindex) echo none ;;
    hash64 | lean | lean_sorted) echo hash64 ;;
    keytext | lean_keytext) echo keytext ;;
    esac
}
# The shape of a variant's log: every variant's database is a copy of a template holding the
# table and the log of its shape, the log already holding HISTORY rows (written by the floor's
# or today's capture), without key indexes, triggers or capture function; the variant adds them
# (setup only, not measured: copying a template is much faster than writing HISTORY rows
# through each variant's capture).
shape_of() {
    case $1 in
    plain) echo plain ;;
    floor | floor_hash) echo floor ;;
    pgx | pgx_noindex | pgx_nochanged | pgx_noset | pgx_nolookup | hash64 | keytext | lean | lean_sorted | lean_keytext | castcheck) echo pgx ;;
    *) echo "unknown variant $1 (known: $ALL)" >&2; return 1 ;;
    esac
}
template_sql() {
    echo "$TABLE"
    case $1 in
    floor) floor_log_sql; floor_sql ;;
    pgx) pgx_log_sql; pgx_sql pgx_noindex ;;
    esac
}
template_done_sql() {
    case $1 in
    floor) echo "DROP TRIGGER capture_insert ON t; DROP TRIGGER capture_update ON t; DROP FUNCTION audit.capture(); TRUNCATE t;" ;;
    pgx) echo "DROP TRIGGER audit_insert ON t; DROP TRIGGER audit_update ON t; DROP TRIGGER audit_delete ON t;
               DROP TRIGGER audit_truncate ON t; DROP FUNCTION audit.capture(); TRUNCATE t;" ;;
    esac
}
variant_sql() {
    case $1 in
    plain) ;;
    floor) floor_sql ;;
    floor_hash) floor_sql; echo "CREATE INDEX log_row_key ON audit.log USING hash (row_key);" ;;
    *) pgx_sql "$1" ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# The run.
# ---------------------------------------------------------------------------------------------
insert_sql() {
    echo "INSERT INTO t (customer_id, status, amount, note)
          SELECT i % 1000, 'new', (i % 10000) / 100.0, 'order ' || i FROM generate_series(1, $1) AS i"
}
UPDATE_SQL="UPDATE t SET status = 'paid', amount = amount + 1"
has_log() { [ "$1" != plain ]; }

shapes=$(for v in $VARIANTS; do shape_of "$v"; done | sort -u)
for shape in $shapes; do
    tpl=pgx_bench_av_tpl_$shape
    psql_admin -c "DROP DATABASE IF EXISTS $tpl WITH (FORCE)" -c "CREATE DATABASE $tpl"
    psql -X -q -v ON_ERROR_STOP=1 -d "$BASE/$tpl" -f <(template_sql "$shape")
    if [ "$shape" != plain ] && [ "$HISTORY" -gt 0 ]; then
        psql -X -q -v ON_ERROR_STOP=1 -d "$BASE/$tpl" -c "SET app.user_id = '42'" -c "$(insert_sql "$HISTORY")"
    fi
    psql -X -q -v ON_ERROR_STOP=1 -d "$BASE/$tpl" -c "$(template_done_sql "$shape")" -c "VACUUM ANALYZE"
    echo "template $shape filled (load $(load))" >&2
done
for v in $VARIANTS; do
    variant_sql "$v" >"$WORK/$v.sql"
    psql_admin -c "DROP DATABASE IF EXISTS pgx_bench_av_$v WITH (FORCE)" \
        -c "CREATE DATABASE pgx_bench_av_$v TEMPLATE pgx_bench_av_tpl_$(shape_of "$v")"
    psql_v "$v" -f "$WORK/$v.sql"
    echo "installed $v (load $(load))" >&2
done
for shape in $shapes; do
    psql_admin -c "DROP DATABASE pgx_bench_av_tpl_$shape"
done

# Milliseconds one statement takes, measured in the session around it (AFTER STATEMENT triggers
# run inside the statement), right after a checkpoint so every variant pays the same full-page
# writes. The table starts empty (identities keep counting, as in production).
time_ms() {
    psql_v "$1" -At <<SQL | tail -n 1
\\set ON_ERROR_STOP 1
SET app.user_id = '42';
CHECKPOINT;
SELECT clock_timestamp() AS t0 \\gset
$2;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0') * 1000);
SQL
}
vacuum() {
    if has_log "$1"; then psql_v "$1" -c "VACUUM ANALYZE t, audit.log"; else psql_v "$1" -c "VACUUM ANALYZE t"; fi
}

declare -A samples
loads=""
for round in $(seq 1 "$ROUNDS"); do
    loads+="$(load) "
    for v in $VARIANTS; do
        psql_v "$v" -c "TRUNCATE t"
        vacuum "$v"
        samples[insert_$v]+="$(time_ms "$v" "$(insert_sql "$ROWS")") "
        vacuum "$v"
        samples[update_$v]+="$(time_ms "$v" "$UPDATE_SQL") "
    done
    echo "bulk round $round/$ROUNDS done (load $(load))" >&2
done

# Every variant logged every row of every measured statement (plus the history).
for v in $VARIANTS; do
    has_log "$v" || continue
    logged=$(psql_v "$v" -At -c "SELECT count(*) FILTER (WHERE operation <> 'TRUNCATE') FROM audit.log")
    expected=$((HISTORY + ROUNDS * 2 * ROWS))
    if [ "$logged" != "$expected" ]; then
        echo "$v: the log holds $logged rows; expected $expected" >&2
        exit 1
    fi
done

# Single-row transactions with the actor set as an application would: an INSERT, and an UPDATE
# of a random row among ROWS.
for v in $VARIANTS; do
    psql_v "$v" -c "TRUNCATE t" -c "$(insert_sql "$ROWS")"
    vacuum "$v"
    range=$(psql_v "$v" -At -F' ' -c "SELECT min(id), max(id) FROM t")
    cat >"$WORK/insert_$v.sql" <<SQL
\\set c random(1, 1000)
BEGIN;
SET LOCAL app.user_id = '42';
INSERT INTO t (customer_id, status, amount, note) VALUES (:c, 'new', 9.99, 'single');
COMMIT;
SQL
    cat >"$WORK/update_$v.sql" <<SQL
\\set id random(${range% *}, ${range#* })
BEGIN;
SET LOCAL app.user_id = '42';
UPDATE t SET status = 'paid', amount = amount + 1 WHERE id = :id;
COMMIT;
SQL
done
tps() {
    PGOPTIONS="$PGOPTIONS -c synchronous_commit=off" \
        pgbench -n -c 1 -j 1 -T "$SECONDS_PER_RUN" -f "$WORK/$2_$1.sql" "$BASE/pgx_bench_av_$1" 2>/dev/null |
        awk '/^tps/ {printf "%.0f", $3}'
}
for round in $(seq 1 "$ROUNDS"); do
    loads+="$(load) "
    for v in $VARIANTS; do
        for kind in insert update; do
            samples[tps_${kind}_$v]+="$(tps "$v" "$kind") "
        done
    done
    echo "pgbench round $round/$ROUNDS done (load $(load))" >&2
done

# How a look-up by key is served in each log.
echo
for v in $VARIANTS; do
    has_log "$v" || continue
    psql_v "$v" -c "ANALYZE audit.log"
    key=$(psql_v "$v" -At -c "SELECT max(id) - 7 FROM t")
    echo "-- $v: look-up by key"
    psql_v "$v" -c "EXPLAIN (COSTS OFF) $(lookup_sql "$(index_of "$v")" "$key")"
    found=$(psql_v "$v" -At -c "SELECT count(*) FROM ($(lookup_sql "$(index_of "$v")" "$key")) AS h")
    echo "   (rows found: $found)"
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
declare -A med
for key in "${!samples[@]}"; do
    med[$key]=$(median <<<"${samples[$key]}")
done
ratio() { if [ -n "$2" ] && [ -n "$1" ]; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; else echo -; fi; }

printf '\naudit capture variants: %s rows, log pre-filled with %s, median of %s rounds, load average per round: %s\n' \
    "$ROWS" "$HISTORY" "$ROUNDS" "$loads"
for key in $(printf '%s\n' "${!samples[@]}" | sort); do
    printf '  %-26s %s\n' "$key" "${samples[$key]}"
done
P=plain F=floor
printf '\n%-14s %9s %6s %6s %9s %6s %6s %8s %6s %6s %8s %6s %6s\n' variant "INSERT" "/plain" "/floor" "UPDATE" "/plain" "/floor" \
    "1-INS" "/plain" "/floor" "1-UPD" "/plain" "/floor"
for v in $VARIANTS; do
    printf '%-14s %6s ms %6s %6s %6s ms %6s %6s %4s tps %6s %6s %4s tps %6s %6s\n' "$v" \
        "${med[insert_$v]}" "$(ratio "${med[insert_$v]}" "${med[insert_$P]:-}")" "$(ratio "${med[insert_$v]}" "${med[insert_$F]:-}")" \
        "${med[update_$v]}" "$(ratio "${med[update_$v]}" "${med[update_$P]:-}")" "$(ratio "${med[update_$v]}" "${med[update_$F]:-}")" \
        "${med[tps_insert_$v]}" "$(ratio "${med[tps_insert_$P]:-}" "${med[tps_insert_$v]}")" "$(ratio "${med[tps_insert_$F]:-}" "${med[tps_insert_$v]}")" \
        "${med[tps_update_$v]}" "$(ratio "${med[tps_update_$P]:-}" "${med[tps_update_$v]}")" "$(ratio "${med[tps_update_$F]:-}" "${med[tps_update_$v]}")"
done
echo "(ratios: time / time of the baseline; for pgbench, TPS of the baseline / TPS of the variant)"
