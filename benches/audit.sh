#!/usr/bin/env bash
# Cost of the audit pattern, measured in one run against two baselines: the same table
# unaudited, and the floor under any jsonb audit log (the cheapest statement-level trigger that
# writes one jsonb row per changed row, no index, no actor: benches/audit_floor.sh's design).
#
#   benches/audit.sh                # 200,000 rows, 3 rounds, 5 s of pgbench per run
#   ROWS=50000 ROUNDS=1 SECONDS_PER_RUN=2 HISTORY=0 benches/audit.sh
#
# Measures bulk INSERT and bulk UPDATE (one statement each, ROWS rows) and single-row INSERT
# and UPDATE transactions (pgbench, one client); reports medians of ROUNDS rounds and the ratios
# to both baselines. The sides alternate within each round, so load from other work on the
# machine falls on all of them alike; the load average is printed with the figures.
#
# The pgx side is what `pgx new audit` writes (every migration of it: an install migration too,
# when the version of pgx writes one), applied by `pgx migrate up` from a scratch project. The
# log starts with HISTORY rows (default 1,000,000) and keeps growing: a production log is never
# empty, and what an index costs depends on its size. The floor's log gets as many.
#
# Needs psql and pgbench on PATH and a PostgreSQL superuser in DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/postgres); creates and drops database pgx_bench_audit.
set -euo pipefail

ROWS=${ROWS:-200000}
ROUNDS=${ROUNDS:-3}
HISTORY=${HISTORY:-1000000}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
PER_ROW=${PER_ROW:-1}
ADMIN_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB=pgx_bench_audit
URL="${ADMIN_URL%/*}/$DB"
ROOT=$(cd "$(dirname "$0")/.." && pwd)

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
PGX="$ROOT/target/release/pgx"

export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -d "$ADMIN_URL" "$@"; }
psql_db() { psql -X -q -v ON_ERROR_STOP=1 -d "$URL" "$@"; }

WORK=$(mktemp -d)
cleanup() {
    rm -rf "$WORK"
    psql_admin -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

psql_admin -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"

TABLE_DDL='(
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL,
    status      text NOT NULL,
    amount      numeric(12,2) NOT NULL,
    note        text,
    created_at  timestamptz NOT NULL DEFAULT now()
)'
psql_db -c "CREATE TABLE plain $TABLE_DDL" -c "CREATE TABLE floor $TABLE_DDL" \
    -c "CREATE TABLE audited $TABLE_DDL" -c "CREATE TABLE per_row $TABLE_DDL"

# Every migration `pgx new audit` writes, whatever their number.
(cd "$WORK" && "$PGX" init >/dev/null && "$PGX" new audit audited >/dev/null &&
    DATABASE_URL="$URL" "$PGX" migrate up >/dev/null)

# The floor: one statement-level trigger per event writing the key and the row(s) as jsonb, with
# the transaction id, time, names and operation; no index, no actor, no exclusions. An UPDATE
# pairs its old and new rows by position, the cheapest pairing there is.
psql_db <<'SQL'
CREATE TABLE floor_log (
    id bigint GENERATED ALWAYS AS IDENTITY, txid xid8, logged_at timestamptz, schema_name text,
    table_name text, operation text, row_key jsonb, new_row jsonb, old_row jsonb);
CREATE FUNCTION floor_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO floor_log (txid, logged_at, schema_name, table_name, operation, row_key, new_row)
    SELECT pg_current_xact_id(), now(), TG_TABLE_SCHEMA, TG_TABLE_NAME, 'INSERT',
           jsonb_build_object('id', n.id), to_jsonb(n)
      FROM new_rows AS n;
    RETURN NULL;
END $$;
CREATE FUNCTION floor_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO floor_log (txid, logged_at, schema_name, table_name, operation, row_key, new_row, old_row)
    SELECT pg_current_xact_id(), now(), TG_TABLE_SCHEMA, TG_TABLE_NAME, 'UPDATE',
           jsonb_build_object('id', (n.r).id), to_jsonb(n.r), to_jsonb(o.r)
      FROM (SELECT row_number() OVER () AS rn, t AS r FROM new_rows AS t) AS n
      JOIN (SELECT row_number() OVER () AS rn, t AS r FROM old_rows AS t) AS o USING (rn);
    RETURN NULL;
END $$;
CREATE TRIGGER floor_insert AFTER INSERT ON floor REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION floor_insert();
CREATE TRIGGER floor_update AFTER UPDATE ON floor REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION floor_update();

-- For reference only: the design the audit pattern replaces, a row-level trigger doing one
-- INSERT into the same log per row (with none of the pattern's per-table settings).
CREATE FUNCTION per_row_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit.log (txid, logged_at, schema_name, table_name, operation, row_key, new_row,
                           actor, db_role, application_name)
    VALUES (pg_current_xact_id(), now(), TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP,
            jsonb_build_object('id', NEW.id), to_jsonb(NEW),
            NULLIF(current_setting('app.user_id', true), '')::bigint, current_user,
            current_setting('application_name'));
    RETURN NULL;
END
$$;
CREATE TRIGGER per_row_audit AFTER INSERT ON per_row FOR EACH ROW EXECUTE FUNCTION per_row_audit();
SQL

# Milliseconds one statement takes, measured in the session around it (AFTER STATEMENT
# triggers run inside the statement). Each run starts right after a checkpoint, so every side
# pays the same full-page writes.
time_ms() {
    psql_db -At <<SQL | tail -n 1
\\set ON_ERROR_STOP 1
SET app.user_id = '42';
CHECKPOINT;
SELECT clock_timestamp() AS t0 \\gset
$1;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0') * 1000);
SQL
}

insert_sql() {
    echo "INSERT INTO $1 (customer_id, status, amount, note)
          SELECT i % 1000, 'new', (i % 10000) / 100.0, 'order ' || i FROM generate_series(1, $2) AS i"
}
update_sql() {
    echo "UPDATE $1 SET status = 'paid', amount = amount + 1"
}

TABLES="plain floor audited per_row"
reset_tables() {
    # Identities keep counting, as they do in production.
    psql_db -c "TRUNCATE ${TABLES// /, }" -c "VACUUM ANALYZE ${TABLES// /, }, floor_log, audit.log"
}

if [ "$HISTORY" -gt 0 ]; then
    psql_db -c "$(insert_sql audited "$HISTORY")" -c "$(insert_sql floor "$HISTORY")"
fi

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
load() { cut -d' ' -f1 /proc/loadavg; }

declare -A samples
loads=""
for round in $(seq 1 "$ROUNDS"); do
    loads+="$(load) "
    for table in plain floor audited; do
        reset_tables
        samples[insert_$table]+="$(time_ms "$(insert_sql "$table" "$ROWS")") "
        psql_db -c "VACUUM ANALYZE $table"
        samples[update_$table]+="$(time_ms "$(update_sql "$table")") "
    done
    if [ "$PER_ROW" = 1 ]; then
        reset_tables
        samples[insert_per_row]+="$(time_ms "$(insert_sql per_row "$ROWS")") "
    fi
    echo "bulk round $round/$ROUNDS done (load $(load))" >&2
done

# Every audited row of every round is in the log: one INSERT and one UPDATE each.
logged=$(psql_db -At -c "SELECT count(*) FROM audit.log WHERE table_name = 'audited' AND new_row->>'status' IN ('new', 'paid')")
expected=$((ROUNDS * 2 * ROWS))
if [ "$logged" != "$expected" ]; then
    echo "audit log holds $logged rows of the measured statements; expected $expected" >&2
    exit 1
fi

# Single-row transactions, with the actor set as an application would: one INSERT each, and one
# UPDATE each of a random row among ROWS. synchronous_commit is off for every side: with it on,
# all wait for the same WAL flush per commit, which hides the CPU the trigger adds behind disk
# latency.
reset_tables
for table in plain floor audited; do
    psql_db -c "$(insert_sql "$table" "$ROWS")" -c "VACUUM ANALYZE $table"
    range=$(psql_db -At -F' ' -c "SELECT min(id), max(id) FROM $table")
    cat >"$WORK/insert_$table.sql" <<SQL
\\set c random(1, 1000)
BEGIN;
SET LOCAL app.user_id = '42';
INSERT INTO $table (customer_id, status, amount, note) VALUES (:c, 'new', 9.99, 'single');
COMMIT;
SQL
    cat >"$WORK/update_$table.sql" <<SQL
\\set id random(${range% *}, ${range#* })
BEGIN;
SET LOCAL app.user_id = '42';
UPDATE $table SET status = 'paid', amount = amount + 1 WHERE id = :id;
COMMIT;
SQL
done
tps() {
    PGOPTIONS="$PGOPTIONS -c synchronous_commit=off" \
        pgbench -n -c 1 -j 1 -T "$SECONDS_PER_RUN" -f "$WORK/$1.sql" "$URL" 2>/dev/null |
        awk '/^tps/ {printf "%.0f", $3}'
}
for round in $(seq 1 "$ROUNDS"); do
    loads+="$(load) "
    for kind in insert update; do
        for table in plain floor audited; do
            samples[tps_${kind}_$table]+="$(tps "${kind}_$table") "
        done
    done
    echo "pgbench round $round/$ROUNDS done (load $(load))" >&2
done

declare -A med
for key in "${!samples[@]}"; do
    med[$key]=$(median <<<"${samples[$key]}")
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }

printf '\naudit benchmark: %s rows, log pre-filled with %s, median of %s rounds, load average per round: %s\n' \
    "$ROWS" "$HISTORY" "$ROUNDS" "$loads"
for key in $(printf '%s\n' "${!samples[@]}" | sort); do
    printf '  %-24s %s\n' "$key" "${samples[$key]}"
done
printf '\n%-34s %11s %11s %11s %9s %9s %9s\n' "" unaudited floor pgx "floor/un" "pgx/un" "pgx/floor"
for kind in insert update; do
    p=${med[${kind}_plain]} f=${med[${kind}_floor]} a=${med[${kind}_audited]}
    printf '%-34s %8s ms %8s ms %8s ms %9s %9s %9s\n' "bulk ${kind^^}, one statement" "$p" "$f" "$a" \
        "$(ratio "$f" "$p")" "$(ratio "$a" "$p")" "$(ratio "$a" "$f")"
done
for kind in insert update; do
    p=${med[tps_${kind}_plain]} f=${med[tps_${kind}_floor]} a=${med[tps_${kind}_audited]}
    printf '%-34s %7s tps %7s tps %7s tps %9s %9s %9s\n' "single-row ${kind^^} (pgbench)" "$p" "$f" "$a" \
        "$(ratio "$p" "$f")" "$(ratio "$p" "$a")" "$(ratio "$f" "$a")"
done
if [ "$PER_ROW" = 1 ]; then
    printf '%-34s %8s ms %11s %8s ms %9s %9s\n' "(reference: per-row trigger INSERT)" "${med[insert_plain]}" "" \
        "${med[insert_per_row]}" "" "$(ratio "${med[insert_per_row]}" "${med[insert_plain]}")"
fi
echo "(ratios: time / time; for pgbench, TPS of the baseline / TPS of the measured side)"
