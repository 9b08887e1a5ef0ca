#!/usr/bin/env bash
# What partitioning a live table, then maintaining it, does to its writers.
#
# A table of ROWS rows (default 2,000,000) spread over the last 12 months takes writes from
# pgbench (4 clients: each transaction inserts a row for now and updates a random old row) for
# DURATION seconds per phase. Phases, each printed with the longest writer stall:
#   - none:     no migration (the machine's own noise: a shared machine stalls writers by itself);
#   - convert:  from +2 s, `pgx migrate up` applies `pgx new partition events --set convert=live`
#               (prepare, validate, swap; the install migration is applied beforehand);
#   - maintain: rows for three months beyond the premade ones wait in the default partition and
#               an index was created `ON ONLY` the parent; from +2 s, `pgx partition maintain`
#               moves the rows into new partitions and builds the index CONCURRENTLY on every
#               partition (the 2,000,000-row first partition included), then attaches it.
# The stall is measured two ways from pgbench's per-transaction log: the slowest transaction,
# and the three largest gaps between successive commits of any writer (times no write
# committed), each with when it began, to tell the steps' stalls from the machine's.
# No row lost or duplicated: count and checksum of the original rows before and after, every
# committed insert present, ids distinct.
#
#   benches/partition_live.sh           (DATABASE_URL: a superuser URL; default local postgres)
#   ROWS=200000 DURATION=10 benches/partition_live.sh     (a quick run)
set -euo pipefail

ADMIN_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
ROWS=${ROWS:-2000000}
DURATION=${DURATION:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DB=pgx_bench_partition_live

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
q() { psql -XAtq -v ON_ERROR_STOP=1 "$URL" -c "$1"; }

cat > "$WORK/write.sql" <<SQL
\set id random(1, $ROWS)
BEGIN;
INSERT INTO events (kind, payload) VALUES ('bench', '{}');
UPDATE events SET payload = '{"touched": true}' WHERE id = :id;
END;
SQL

# The original rows, as a count and a checksum (payload excluded: the writers update it).
CHECKSUM="SELECT count(*) || ' ' || sum(hashtext(id || ' ' || created_at::text || kind)) FROM events WHERE id <= $ROWS"

# One phase under pgbench: $1 the name, then the command to run from +2 s (none: nothing).
phase() {
  local name=$1; shift
  cd "$WORK"
  rm -f "$WORK"/pgbench_log.*
  local t0; t0=$(date +%s%N)
  pgbench -n -c 4 -j 2 -T "$DURATION" -f "$WORK/write.sql" -l --log-prefix="$WORK/pgbench_log" "$URL" >"$WORK/$name.pgbench" 2>&1 &
  local bench=$!
  sleep 2
  local m0; m0=$(date +%s%N)
  local status="not run"
  if [ "$#" -gt 0 ]; then
    status=done
    "$@" >"$WORK/$name.out" 2>&1 || status=failed
  fi
  local m1; m1=$(date +%s%N)
  wait "$bench" || { cat "$WORK/$name.pgbench"; exit 1; }
  if [ "$#" -gt 0 ]; then
    echo "== $name: $status in $(( (m1 - m0) / 1000000 )) ms from +$(( (m0 - t0) / 1000000 )) ms"
    sed 's/^/   | /' "$WORK/$name.out" | cut -c1-150
  else
    echo "== $name: no migration, no maintenance"
  fi
  [ "$status" != failed ] || exit 1
  # pgbench log: client xact latency_us script epoch_s epoch_us (the transaction's end).
  cat "$WORK"/pgbench_log.* | awk -v t0="$t0" '
    { end_ms = ($5 * 1000 + $6 / 1000) - t0 / 1000000; lat = $3 / 1000
      if (lat > max) { max = lat; at = end_ms - lat }
      print end_ms > "'"$WORK"'/ends" ; total++ }
    END { printf "   slowest write: %.0f ms (from +%.0f ms); %d writes committed\n", max, at, total }'
  sort -n "$WORK/ends" | awk 'NR > 1 { printf "%.0f %.0f\n", $1 - prev, prev } { prev = $1 }' | sort -rn | awk 'NR <= 3' |
    awk '{ s = s sprintf("%s%d ms from +%d ms", NR > 1 ? ", " : "", $1, $2) }
         END { printf "   longest times without a committed write: %s\n", s }'
  COMMITTED=$(( COMMITTED + $(cat "$WORK"/pgbench_log.* | wc -l) ))
}

psql -Xq -v ON_ERROR_STOP=1 "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
psql -Xq -v ON_ERROR_STOP=1 "$URL" <<SQL
CREATE TABLE events (
    id bigint GENERATED ALWAYS AS IDENTITY,
    created_at timestamptz NOT NULL DEFAULT now(),
    kind text NOT NULL,
    payload jsonb,
    PRIMARY KEY (id, created_at)
);
INSERT INTO events (created_at, kind)
SELECT now() - interval '365 days' * g / $ROWS, 'kind ' || g % 10 FROM generate_series(1, $ROWS) g;
VACUUM ANALYZE events;
SQL
before=$(q "$CHECKSUM")
COMMITTED=0

PROJECT="$WORK/project"
"$PGX" init "$PROJECT" >/dev/null
cd "$PROJECT"
"$PGX" new partition events --offline --set column=created_at --set convert=live --set lock_timeout=100ms >/dev/null
# The shared install first: it is not part of the conversion.
install=$(ls migrations | grep 'partition_install.up.sql' | cut -d_ -f1)
"$PGX" migrate up --database-url "$URL" --target "$install" >/dev/null

echo "partition_live: $ROWS rows, 4 pgbench writers (insert + update of a random old row), ${DURATION}s per phase; load average $(cut -d' ' -f1-3 /proc/loadavg)"
phase none
phase convert sh -c "cd '$PROJECT' && '$PGX' migrate up --database-url '$URL'"
after=$(q "$CHECKSUM")
echo "   original rows before: $before; after: $after"
[ "$before" = "$after" ] || { echo "ROWS LOST OR CHANGED"; exit 1; }
q "SELECT relkind FROM pg_class WHERE oid = 'events'::regclass" | grep -qx p

# Maintenance work waiting: rows beyond the premade partitions, and an index on the parent only.
q "INSERT INTO events (created_at, kind)
   SELECT date_trunc('month', now()) + interval '8 months' + (g % 3) * interval '1 month' + g * interval '1 second', 'future'
   FROM generate_series(1, $ROWS / 10) g" >/dev/null
q "CREATE INDEX events_kind_idx ON ONLY events (kind)" >/dev/null
echo "   waiting: $(q "SELECT count(*) FROM events_default") rows in the default partition, index events_kind_idx on $(q "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass") partitions to build"
phase maintain sh -c "cd '$PROJECT' && '$PGX' partition maintain --database-url '$URL'"
after=$(q "$CHECKSUM")
echo "   original rows before: $before; after: $after"
[ "$before" = "$after" ] || { echo "ROWS LOST OR CHANGED"; exit 1; }
echo "   default partition: $(q "SELECT count(*) FROM events_default") rows; events_kind_idx valid: $(q "SELECT indisvalid FROM pg_index WHERE indexrelid = 'events_kind_idx'::regclass")"

# Every committed insert is there, once.
inserted=$(q "SELECT count(*) FROM events WHERE kind = 'bench'")
distinct=$(q "SELECT count(*) = count(DISTINCT id) FROM events")
echo "== rows: $COMMITTED writes committed, $inserted inserted rows found; ids distinct: $distinct"
[ "$inserted" = "$COMMITTED" ] && [ "$distinct" = t ] || { echo "ROWS LOST OR DUPLICATED"; exit 1; }
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
