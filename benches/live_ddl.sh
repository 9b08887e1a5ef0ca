#!/usr/bin/env bash
# What a migration does to the writers of a busy table while a long transaction holds it.
#
# pgbench updates random rows of a 1,000,000-row table (4 clients). One second in, a 10 s
# transaction reads the table (ACCESS SHARE, as a report or a long-running query would). One
# second later, `pgx migrate up` applies the timestamps pattern to the table: its ALTER TABLE
# needs ACCESS EXCLUSIVE, so it queues behind that transaction, and every writer queues behind
# it. Two runs, each on a fresh copy of the table:
#   - single: a 5 s lock_timeout (what patterns used by default before), no retries (`--lock-retries 0`): the writers
#     stall for the whole 5 s, then the migration fails;
#   - retries: the pattern rendered with a short lock_timeout (LOCK_MS, default 100, as pgx's
#     own --lock-attempt-timeout), which is the per-attempt value, and pgx's default retries
#     (10, with growing pauses): each attempt gives up within LOCK_MS, the writers go on
#     between attempts, and the migration is applied after the long transaction ends.
# And a third, none: the same without any migration, whose longest stall is the machine's own
# noise (a shared machine under load stalls writers by itself now and then).
# Printed for each: whether the migration was applied and when, how many attempts it took,
# the longest writer stall (the slowest pgbench transaction), and the TPS timeline in 500 ms
# buckets (from pgbench's per-transaction log).
#
#   benches/live_ddl.sh            (DATABASE_URL: a superuser URL; default local postgres)
#   LOCK_MS=200 benches/live_ddl.sh
set -euo pipefail

ADMIN_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
LOCK_MS=${LOCK_MS:-100}
DURATION=16
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DB=pgx_bench_live_ddl

# pgx's own time is not what is measured: the debug build will do.
cargo build --locked --quiet --manifest-path "$ROOT/Cargo.toml"
PGX="$ROOT/target/debug/pgx"
WORK=$(mktemp -d)
cleanup() {
  cd /
  rm -rf "$WORK"
  psql -Xq "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

URL=$(python3 - "$ADMIN_URL" "$DB" <<'PY'
import sys, urllib.parse as u
url, db = sys.argv[1:]
p = u.urlsplit(url)
print(u.urlunsplit((p.scheme, p.netloc, "/" + db, p.query, "")))
PY
)

cat > "$WORK/write.sql" <<'SQL'
\set id random(1, 1000000)
UPDATE orders SET qty = qty + 1 WHERE id = :id;
SQL

# One run: $1 is the name, then the arguments of `pgx new` and of `pgx migrate up`, split by --.
run() {
  local name=$1; shift
  local new=() up=()
  while [ "$1" != "--" ]; do new+=("$1"); shift; done; shift
  up=("$@")
  psql -Xq -v ON_ERROR_STOP=1 "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
  psql -Xq -v ON_ERROR_STOP=1 "$URL" <<'SQL'
CREATE TABLE orders (id bigint PRIMARY KEY, item text NOT NULL, qty int NOT NULL);
INSERT INTO orders SELECT g, 'item ' || g, 0 FROM generate_series(1, 1000000) g;
VACUUM ANALYZE orders;
SQL
  local project="$WORK/$name"
  "$PGX" init "$project" >/dev/null
  (cd "$project" && "$PGX" new timestamps orders --offline "${new[@]}" >/dev/null)

  cd "$WORK"
  rm -f "$WORK"/pgbench_log.*
  local t0; t0=$(date +%s%N)
  pgbench -n -c 4 -j 2 -T "$DURATION" -f "$WORK/write.sql" -l --log-prefix="$WORK/pgbench_log" "$URL" >"$WORK/$name.pgbench" 2>&1 &
  local bench=$!
  sleep 1
  psql -Xq "$URL" -c "BEGIN; SELECT count(*) FROM orders; SELECT pg_sleep(10); COMMIT;" >/dev/null &
  local holder=$!
  sleep 1
  local m0; m0=$(date +%s%N)
  local status=applied
  if [ "$name" = none ]; then
    status="not run"; : >"$WORK/$name.migrate"
  else
    (cd "$project" && "$PGX" migrate up --database-url "$URL" "${up[@]}") >"$WORK/$name.migrate" 2>&1 || status=failed
  fi
  local m1; m1=$(date +%s%N)
  wait "$holder" "$bench"

  local attempts=$(( $(grep -c '^retrying ' "$WORK/$name.migrate" || true) + 1 ))
  if [ "$name" = none ]; then
    echo "== none: no migration"
  else
    echo "== $name: migration $status after $(( (m1 - m0) / 1000000 )) ms, $attempts attempt(s), started at +$(( (m0 - t0) / 1000000 )) ms"
  fi
  [ "$status" != failed ] || sed -n '$p' "$WORK/$name.migrate" | cut -c1-160
  # pgbench log: client xact latency_us script epoch_s epoch_us (the transaction's end).
  cat "$WORK"/pgbench_log.* | awk -v t0="$t0" '
    { end_ms = ($5 * 1000 + $6 / 1000) - t0 / 1000000; lat = $3 / 1000
      if (lat > max) { max = lat; at = end_ms - lat }
      n[int(end_ms / 500)]++; total++ }
    END {
      printf "   longest writer stall: %.0f ms (from +%.0f ms); %d transactions\n", max, at, total
      printf "   TPS per 500 ms from +0 s:"
      for (b = 0; b < 32; b++) printf " %d", n[b] * 2
      printf "\n" }'
}

echo "live DDL: 1,000,000 rows, 4 pgbench writers, a 10 s reader from +1 s, the migration from +2 s"
run none --
run single --set "lock_timeout=5s" -- --lock-retries 0
run retries --set "lock_timeout=${LOCK_MS}ms" --
