#!/usr/bin/env bash
# Schema per tenant: `pgx migrate up --tenants` over 200 tenant schemas, --jobs 2 against
# --jobs 1 in the same run.
#
# Each round makes two identical databases holding 200 tenants (created with `pgx tenant add`
# at the first tenant migration), adds the rest of the tenant migrations, and times
# `migrate up --tenants` on one database with --jobs 1 and on the other with --jobs 2; the order
# alternates between rounds. Reported: the wall time of each, and the median ratio.
#
# Usage: benches/tenant_schemas.sh        (DATABASE_URL: an admin URL; default local postgres)
#        TENANTS=500 ROUNDS=5 benches/tenant_schemas.sh
set -euo pipefail

ADMIN_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
TENANTS=${TENANTS:-200}
ROUNDS=${ROUNDS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

cargo build --quiet --manifest-path "$ROOT/Cargo.toml"
PGX="$ROOT/target/debug/pgx"
WORK=$(mktemp -d)
cleanup() {
  cd /
  rm -rf "$WORK"
  for db in pgx_bench_tenants_1 pgx_bench_tenants_2; do
    psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

db_url() {
  python3 - "$ADMIN_URL" "$1" <<'PY'
import sys, urllib.parse as u
url, db = sys.argv[1:]
p = u.urlsplit(url)
print(u.urlunsplit((p.scheme, p.netloc, "/" + db, p.query, "")))
PY
}

now() { date +%s.%N; }

cd "$WORK"
"$PGX" init >/dev/null
tenant_add() { "$PGX" add --scope tenant "$@" >/dev/null; }
tenant_add "create customers" --up "
CREATE TABLE customers (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL UNIQUE);" --down "DROP TABLE customers;"
names=$(seq -f "t%04g" 1 "$TENANTS" | tr '\n' ' ')

# The migrations the timed runs apply: a few tables, indexes, a function and trigger, some rows.
mkdir -p later
tenant_add "create orders" --up "
CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                     customer bigint NOT NULL REFERENCES customers, total numeric(12, 2) NOT NULL,
                     placed_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX orders_customer ON orders (customer, placed_at);" --down "DROP TABLE orders;"
"$PGX" new timestamps customers --scope tenant >/dev/null
tenant_add "seed" --up "
INSERT INTO customers (email) SELECT 'c' || g || '@example.com' FROM generate_series(1, 200) g;
INSERT INTO orders (customer, total) SELECT 1 + g % 200, g FROM generate_series(1, 1000) g;" --down "DELETE FROM orders; DELETE FROM customers;"
# Keep the first migration (two files); the others wait in later/ until the timed runs.
for f in $(ls migrations/tenant | sort | tail -n +3); do mv "migrations/tenant/$f" later/; done

: > results.txt
for round in $(seq "$ROUNDS"); do
  for jobs in 1 2; do
    db=pgx_bench_tenants_$jobs
    psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
    # shellcheck disable=SC2086
    DATABASE_URL=$(db_url $db) "$PGX" tenant add $names
  done
  cp later/* migrations/tenant/
  if (( round % 2 )); then order="1 2"; else order="2 1"; fi
  for jobs in $order; do
    start=$(now)
    DATABASE_URL=$(db_url pgx_bench_tenants_$jobs) "$PGX" migrate up --tenants --jobs "$jobs"
    end=$(now)
    echo "$round $jobs $(echo "$end - $start" | bc -l)" >> results.txt
  done
  for f in later/*; do rm "migrations/tenant/$(basename "$f")"; done
  last=$(printf "tenant_t%04d" "$TENANTS")
  for jobs in 1 2; do
    [ "$(psql -qAt "$(db_url pgx_bench_tenants_$jobs)" -c "SELECT count(*) FROM $last._sqlx_migrations")" = 4 ] ||
      { echo "$last is not fully migrated" >&2; exit 1; }
  done
  echo "round $round: $(grep "^$round " results.txt | awk '{ printf "--jobs %s %.2f s   ", $2, $3 }')"
done

python3 - "$TENANTS" "$ROUNDS" <<'PY'
import statistics, sys
tenants, rounds = sys.argv[1:]
t = {}
for line in open("results.txt"):
    r, j, s = line.split()
    t.setdefault(j, {})[r] = float(s)
print(f"\n{tenants} tenant schemas, 3 tenant migrations each, median of {rounds} rounds:")
print(f"  --jobs 1: {statistics.median(t['1'].values()):.2f} s")
print(f"  --jobs 2: {statistics.median(t['2'].values()):.2f} s")
print(f"  speed-up (jobs 1 time / jobs 2 time): {statistics.median(t['1'][r] / t['2'][r] for r in t['1']):.2f}x")
PY
