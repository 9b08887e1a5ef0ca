#!/usr/bin/env bash
# Cost of the audit pattern, measured in one run against a baseline: the same table unaudited.
#
#   benches/audit.sh                # 200,000 rows, 3 rounds, 10 s of pgbench per side
#   ROWS=50000 ROUNDS=1 SECONDS_PER_RUN=5 HISTORY=0 benches/audit.sh
#
# The log starts with HISTORY rows (default 1,000,000) and keeps growing: a production log is
# never empty, and what an index costs depends on its size.
#
# Needs psql and pgbench on PATH and a PostgreSQL superuser in DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/postgres); creates and drops database pgx_bench_audit.
# The audit migration is the one `pgx new audit` renders, applied by `pgx migrate up`.
set -euo pipefail

ROWS=${ROWS:-200000}
ROUNDS=${ROUNDS:-3}
HISTORY=${HISTORY:-1000000}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
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
psql_db -c "CREATE TABLE plain $TABLE_DDL" -c "CREATE TABLE audited $TABLE_DDL" -c "CREATE TABLE per_row $TABLE_DDL"

(cd "$WORK" && "$PGX" init && "$PGX" new audit audited >/dev/null &&
    DATABASE_URL="$URL" "$PGX" migrate up)

# For reference only: the design the audit pattern replaces, a row-level trigger doing one
# INSERT into the same log per row (with none of the pattern's per-table settings).
psql_db <<'SQL'
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
# triggers run inside the statement). Each run starts from an empty table, right after a
# checkpoint, so both sides pay the same full-page writes.
time_ms() {
    local table=$1 statement=$2
    psql_db -At <<SQL | tail -n 1
\\set ON_ERROR_STOP 1
SET app.user_id = '42';
CHECKPOINT;
SELECT clock_timestamp() AS t0 \\gset
$statement;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0') * 1000);
SQL
}

insert_sql() {
    echo "INSERT INTO $1 (customer_id, status, amount, note)
          SELECT i % 1000, 'new', (i % 10000) / 100.0, 'order ' || i FROM generate_series(1, $ROWS) AS i"
}
update_sql() {
    echo "UPDATE $1 SET status = 'paid', amount = amount + 1"
}

reset_tables() {
    # Identities keep counting, as they do in production.
    psql_db -c "TRUNCATE plain, audited, per_row" -c "VACUUM ANALYZE plain, audited, per_row, audit.log"
}

if [ "$HISTORY" -gt 0 ]; then
    psql_db -c "INSERT INTO audited (customer_id, status, amount, note)
                SELECT i % 1000, 'old', 1, 'history ' || i FROM generate_series(1, $HISTORY) AS i"
fi

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

declare -A samples
for round in $(seq 1 "$ROUNDS"); do
    for table in plain audited; do
        reset_tables
        samples[insert_$table]+="$(time_ms "$table" "$(insert_sql "$table")") "
        psql_db -c "VACUUM ANALYZE $table"
        samples[update_$table]+="$(time_ms "$table" "$(update_sql "$table")") "
    done
    reset_tables
    samples[insert_per_row]+="$(time_ms per_row "$(insert_sql per_row)") "
    echo "round $round/$ROUNDS done" >&2
done

# Every audited row of every round is in the log: one INSERT and one UPDATE each.
logged=$(psql_db -At -c "SELECT count(*) FROM audit.log WHERE table_name = 'audited' AND new_row->>'status' IN ('new', 'paid')")
expected=$((ROUNDS * 2 * ROWS))
if [ "$logged" != "$expected" ]; then
    echo "audit log holds $logged rows of the measured statements; expected $expected" >&2
    exit 1
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
ins_plain=$(tr ' ' '\n' <<<"${samples[insert_plain]}" | grep . | median)
ins_audit=$(tr ' ' '\n' <<<"${samples[insert_audited]}" | grep . | median)
ins_per_row=$(tr ' ' '\n' <<<"${samples[insert_per_row]}" | grep . | median)
upd_plain=$(tr ' ' '\n' <<<"${samples[update_plain]}" | grep . | median)
upd_audit=$(tr ' ' '\n' <<<"${samples[update_audited]}" | grep . | median)

# Single-row transactions: one INSERT each, with the actor set as an application would.
# synchronous_commit is off for both sides: with it on, both wait for the same WAL flush per
# commit, which hides the CPU the trigger adds behind disk latency.
reset_tables
for table in plain audited; do
    cat >"$WORK/$table.sql" <<SQL
\\set c random(1, 1000)
BEGIN;
SET LOCAL app.user_id = '42';
INSERT INTO $table (customer_id, status, amount, note) VALUES (:c, 'new', 9.99, 'single');
COMMIT;
SQL
done
tps() {
    PGOPTIONS="$PGOPTIONS -c synchronous_commit=off" \
        pgbench -n -c 1 -j 1 -T "$SECONDS_PER_RUN" -f "$WORK/$1.sql" "$URL" 2>/dev/null |
        awk '/^tps/ {printf "%.0f", $3}'
}
# Alternated, best of two each, to damp noise from other work on the machine.
tps_plain=0 tps_audit=0
for _ in 1 2; do
    t=$(tps plain); [ "$t" -gt "$tps_plain" ] && tps_plain=$t
    t=$(tps audited); [ "$t" -gt "$tps_audit" ] && tps_audit=$t
done

printf '\n%-44s %12s %12s %8s\n' "audit benchmark ($ROWS rows, median of $ROUNDS)" unaudited audited ratio
for kind in insert_plain insert_audited insert_per_row update_plain update_audited; do
    printf '  %-16s ms per round: %s\n' "$kind" "${samples[$kind]}"
done
printf '%-44s %10s ms %10s ms %7sx\n' "bulk INSERT, one statement" "$ins_plain" "$ins_audit" "$(ratio "$ins_audit" "$ins_plain")"
printf '%-44s %10s ms %10s ms %7sx\n' "  (reference: per-row trigger, same log)" "$ins_plain" "$ins_per_row" "$(ratio "$ins_per_row" "$ins_plain")"
printf '%-44s %10s ms %10s ms %7sx\n' "bulk UPDATE, one statement" "$upd_plain" "$upd_audit" "$(ratio "$upd_audit" "$upd_plain")"
printf '%-44s %9s tps %9s tps %7sx\n' "single-row INSERT transactions (pgbench)" "$tps_plain" "$tps_audit" "$(ratio "$tps_plain" "$tps_audit")"
echo "(ratios: audited time / unaudited time; for pgbench, unaudited TPS / audited TPS)"
