#!/usr/bin/env bash
# Cost of soft delete, each against its baseline measured in the same run.
#
# 1. DELETE vs UPDATE. `users` (200,000 rows) made a soft-delete table by the migration
#    `pgx new soft_delete users --set deleted_by=deleted_by` renders: `DELETE FROM users WHERE
#    id <= 100000` goes through its rule (counting view, stamping UPDATE, cascade trigger).
#    Baselines: the equivalent `UPDATE ... SET deleted_at = now(), deleted_by = ...` on the same
#    table (its cascade trigger fires too: what soft-deleting by hand costs there), and on an
#    identical copy of the table (same columns and indexes, live-row unique email included)
#    without the rule or trigger. Every statement starts from the same state (rows live again,
#    VACUUM, CHECKPOINT); the ratios shown are medians over ROUNDS.
#
# 2. Reading live rows. `accounts`: 1,000,000 rows, every other one soft-deleted (deleted rows
#    interleaved with live ones on every page), read through the view `accounts_live`; the live
#    look-ups are served by the live-row unique index on email and the partial index
#    `live_indexes=customer_id`. Baseline: a table holding only the 500,000 live rows, with plain
#    indexes on the same columns and the same history (the same 1,000,000 rows inserted, the
#    same half deleted, for real, then VACUUM), so neither has fresher indexes than the other. Queries, as scripts of ONE pgbench run picked at random per
#    transaction (a busy spell on the shared machine hits all alike):
#      - look-up: one account by email;
#      - customer: the accounts of one customer (10 rows), ordered.
#    Ratios are of mean latency (view / live-only table), median over ROUNDS runs.
#
# 3. One row at a time, as an application deletes: `DELETE FROM users WHERE id = $1` vs the
#    equivalent UPDATE on the same table, each followed by the same restore, as two scripts of
#    one pgbench run; ratio of mean latency per transaction, median over ROUNDS runs.
#
# Usage: benches/soft_delete.sh          (DATABASE_URL: a superuser URL; default local postgres)
#        ROUNDS=5 SECONDS_PER_RUN=20 benches/soft_delete.sh
set -euo pipefail

ADMIN_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-15}
ROUNDS=${ROUNDS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DB=pgx_bench_soft_delete

cargo build --quiet --manifest-path "$ROOT/Cargo.toml"
PGX="$ROOT/target/debug/pgx"
WORK=$(mktemp -d)
cleanup() {
  cd /
  rm -rf "$WORK"
  psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

BENCH_URL=$(python3 - "$ADMIN_URL" "$DB" <<'PY'
import sys, urllib.parse as u
url, db = sys.argv[1:]
p = u.urlsplit(url)
print(u.urlunsplit((p.scheme, p.netloc, "/" + db, p.query, "")))
PY
)
psql -q -v ON_ERROR_STOP=1 "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"

cd "$WORK"
"$PGX" init >/dev/null
export DATABASE_URL=$BENCH_URL
"$PGX" add "create tables" --up "
CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, name text NOT NULL, plan text NOT NULL);
CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, customer_id bigint NOT NULL, balance numeric(12, 2) NOT NULL);" \
  --down "DROP TABLE accounts, users;" >/dev/null
"$PGX" new soft_delete users --set deleted_by=deleted_by >/dev/null
"$PGX" new soft_delete accounts --set live_indexes=customer_id >/dev/null
"$PGX" migrate up 2>/dev/null

psql -q -v ON_ERROR_STOP=1 "$BENCH_URL" <<'SQL'
INSERT INTO users SELECT g, 'user' || g || '@example.com', 'name ' || g, 'free' FROM generate_series(1, 200000) g;
CREATE TABLE users_plain (LIKE users INCLUDING ALL);
INSERT INTO users_plain SELECT * FROM users;
-- For comparison, the two other ways to intercept DELETE, on copies of the table.
CREATE TABLE users_trigger (LIKE users INCLUDING ALL);
INSERT INTO users_trigger SELECT * FROM users;
CREATE FUNCTION users_trigger_soft_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users_trigger SET deleted_at = now() WHERE id = OLD.id;
    RETURN NULL;
END $$;
CREATE TRIGGER soft_delete BEFORE DELETE ON users_trigger FOR EACH ROW EXECUTE FUNCTION users_trigger_soft_delete();
CREATE TABLE users_rule (LIKE users INCLUDING ALL);
INSERT INTO users_rule SELECT * FROM users;
CREATE RULE soft_delete AS ON DELETE TO users_rule DO INSTEAD
    UPDATE users_rule SET deleted_at = now() WHERE users_rule.id = old.id AND users_rule.deleted_at IS NULL RETURNING users_rule.*;

CREATE TABLE accounts_only_live (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, customer_id bigint NOT NULL, balance numeric(12, 2) NOT NULL);
CREATE INDEX ON accounts_only_live (customer_id);
INSERT INTO accounts SELECT g, 'account' || g || '@example.com', g / 20, g % 1000 FROM generate_series(1, 1000000) g;
INSERT INTO accounts_only_live SELECT id, email, customer_id, balance FROM accounts;
DELETE FROM accounts WHERE id % 2 = 0;
-- The same rows deleted for real: both tables have had the same history.
DELETE FROM accounts_only_live WHERE id % 2 = 0;
VACUUM ANALYZE;
SQL

median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
ms() { grep -o 'Time: [0-9.]*' | tail -1 | cut -d' ' -f2; }

echo "1. soft-deleting 100,000 of 200,000 rows: DELETE (soft) vs the equivalent UPDATE"
reset() {
  psql -q -v ON_ERROR_STOP=1 "$BENCH_URL" -c "UPDATE users SET deleted_at = NULL, deleted_by = NULL WHERE deleted_at IS NOT NULL" \
    -c "UPDATE users_plain SET deleted_at = NULL, deleted_by = NULL WHERE deleted_at IS NOT NULL" \
    -c "UPDATE users_trigger SET deleted_at = NULL WHERE deleted_at IS NOT NULL" \
    -c "UPDATE users_rule SET deleted_at = NULL WHERE deleted_at IS NOT NULL" \
    -c "VACUUM ANALYZE users, users_plain, users_trigger, users_rule" -c "CHECKPOINT" >/dev/null
}
timed() { reset; printf '\\timing on\nSET app.user_id = 7;\n%s\n' "$1" | psql -q "$BENCH_URL" | ms; }
actor="(SELECT soft_delete.actor('app.user_id', 'bigint'))::bigint"
same=()
plain=()
triggered=()
ruled=()
for round in $(seq "$ROUNDS"); do
  d=$(timed "DELETE FROM users WHERE id <= 100000;")
  s=$(timed "UPDATE users SET deleted_at = now(), deleted_by = $actor WHERE id <= 100000 AND deleted_at IS NULL;")
  p=$(timed "UPDATE users_plain SET deleted_at = now(), deleted_by = $actor WHERE id <= 100000 AND deleted_at IS NULL;")
  rs=$(awk -v d="$d" -v u="$s" 'BEGIN {printf "%.2f", d / u}')
  rp=$(awk -v d="$d" -v u="$p" 'BEGIN {printf "%.2f", d / u}')
  echo "   round $round: DELETE ${d} ms; UPDATE on the same table ${s} ms (${rs}), on a copy without trigger or rule ${p} ms (${rp})"
  same+=("$rs")
  plain+=("$rp")
  t=$(timed "DELETE FROM users_trigger WHERE id <= 100000;")
  r=$(timed "DELETE FROM users_rule WHERE id <= 100000;")
  triggered+=("$(awk -v d="$t" -v u="$p" 'BEGIN {printf "%.2f", d / u}')")
  ruled+=("$(awk -v d="$r" -v u="$p" 'BEGIN {printf "%.2f", d / u}')")
  echo "   round $round: for comparison, BEFORE DELETE trigger ${t} ms, single-UPDATE rule ${r} ms"
done
echo "   median DELETE/UPDATE: $(printf '%s\n' "${same[@]}" | median)x against the same table (goal <= 1.3), $(printf '%s\n' "${plain[@]}" | median)x against the plain copy"
echo "   for comparison, against the plain copy: BEFORE DELETE trigger $(printf '%s\n' "${triggered[@]}" | median)x, single-UPDATE rule $(printf '%s\n' "${ruled[@]}" | median)x (both report DELETE 0)"
echo "   row counts reported: $(psql -q "$BENCH_URL" -c "UPDATE users SET deleted_at = NULL" -c "UPDATE users_trigger SET deleted_at = NULL" -c "UPDATE users_rule SET deleted_at = NULL" >/dev/null;
  for t in users users_trigger users_rule; do printf "%s: %s; " "$t" "$(psql "$BENCH_URL" -c "DELETE FROM $t WHERE id <= 10" 2>&1 | tail -1)"; done)"

echo "2. live-row queries on 1,000,000 rows, half soft-deleted, through the view vs a live-only table"
cat >"$WORK/view_lookup.sql" <<'SQL'
\set n random(0, 499999)
SELECT * FROM accounts_live WHERE email = 'account' || (2 * :n + 1) || '@example.com';
SQL
cat >"$WORK/live_lookup.sql" <<'SQL'
\set n random(0, 499999)
SELECT * FROM accounts_only_live WHERE email = 'account' || (2 * :n + 1) || '@example.com';
SQL
cat >"$WORK/view_customer.sql" <<'SQL'
\set c random(1, 49999)
SELECT id, balance FROM accounts_live WHERE customer_id = :c ORDER BY id;
SQL
cat >"$WORK/live_customer.sql" <<'SQL'
\set c random(1, 49999)
SELECT id, balance FROM accounts_only_live WHERE customer_id = :c ORDER BY id;
SQL
lookups=()
customers=()
for round in $(seq "$ROUNDS"); do
  out=$(pgbench -n -M prepared -T "$SECONDS_PER_RUN" \
    -f "$WORK/view_lookup.sql" -f "$WORK/live_lookup.sql" -f "$WORK/view_customer.sql" -f "$WORK/live_customer.sql" "$BENCH_URL")
  lat=($(echo "$out" | grep -A4 '^SQL script' | grep 'latency average' | grep -o '[0-9.]* ms' | cut -d' ' -f1))
  l=$(awk -v a="${lat[0]}" -v b="${lat[1]}" 'BEGIN {printf "%.3f", a / b}')
  c=$(awk -v a="${lat[2]}" -v b="${lat[3]}" 'BEGIN {printf "%.3f", a / b}')
  echo "   round $round: look-up ${lat[0]} vs ${lat[1]} ms (${l}), customer ${lat[2]} vs ${lat[3]} ms (${c})"
  lookups+=("$l")
  customers+=("$c")
done
echo "   median view/live-only: look-up $(printf '%s\n' "${lookups[@]}" | median)x, customer $(printf '%s\n' "${customers[@]}" | median)x (goal <= 1.05)"

echo "3. one row at a time (what an application does): DELETE (soft) vs the equivalent UPDATE, each followed by its restore"
cat >"$WORK/delete_one.sql" <<'SQL'
\set id random(1, 200000)
DELETE FROM users WHERE id = :id;
UPDATE users SET deleted_at = NULL, deleted_by = NULL WHERE id = :id;
SQL
cat >"$WORK/update_one.sql" <<'SQL'
\set id random(1, 200000)
UPDATE users SET deleted_at = now(), deleted_by = NULL WHERE id = :id AND deleted_at IS NULL;
UPDATE users SET deleted_at = NULL, deleted_by = NULL WHERE id = :id;
SQL
ones=()
for round in $(seq "$ROUNDS"); do
  # Without waiting for the WAL flush, so the statements' own cost shows rather than the commit's.
  out=$(PGOPTIONS='-c synchronous_commit=off' pgbench -n -M prepared -T "$SECONDS_PER_RUN" \
    -f "$WORK/delete_one.sql" -f "$WORK/update_one.sql" "$BENCH_URL")
  lat=($(echo "$out" | grep -A4 '^SQL script' | grep 'latency average' | grep -o '[0-9.]* ms' | cut -d' ' -f1))
  o=$(awk -v a="${lat[0]}" -v b="${lat[1]}" 'BEGIN {printf "%.3f", a / b}')
  echo "   round $round: DELETE ${lat[0]} ms vs UPDATE ${lat[1]} ms per transaction (${o})"
  ones+=("$o")
done
echo "   median DELETE/UPDATE, one row: $(printf '%s\n' "${ones[@]}" | median)x"
