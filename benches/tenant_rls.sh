#!/usr/bin/env bash
# Cost of tenant isolation through row-level security, against its baseline in the same run.
#
# 1,000,000 orders over 100 tenants (rows of all tenants interleaved on every page), isolated by
# the migration `pgx new tenant orders` renders, its tenant index included. Each query runs as
#   - explicit: `WHERE tenant_id = ...` by a BYPASSRLS role, which the policy does not apply to;
#   - policy:   the bare query by the application role (NOSUPERUSER NOBYPASSRLS), through the
#               pgx policy;
#   - naive:    the same, through the usual snippet `USING (tenant_id =
#               current_setting('app.current_tenant')::uuid)` on an identical copy of the
#               table, measured against the explicit WHERE on that copy (naive-explicit);
#   - citus:    the same, through the policy `distribute=citus` renders (one permissive policy
#               `USING (tenant_id = orders_current_tenant())`, no subquery, as Citus requires),
#               on another copy, measured against the same explicit WHERE (naive-explicit): what
#               the subquery of the plain-PostgreSQL policy saves. Its full scan is so slow that
#               it would starve the other scripts of the scan run: it is timed on its own
#               afterwards (CITUS_SCANS transactions of each, interleaved).
# The variants are scripts of ONE pgbench run, picked at random for each transaction, so a busy
# spell on a shared machine hits them alike; every transaction has the same shape
# (BEGIN; SET LOCAL ROLE; set_config(tenant, local); query; COMMIT). Queries:
#   - aggregate: count and sum of one tenant's orders (the tenant index serves all variants);
#   - look-up:   one order by primary key;
#   - full scan: the aggregate with index scans switched off, so the policy is evaluated for
#                each of the 1,000,000 rows: there, reading the setting once per statement
#                (the pgx policy's InitPlan) is what keeps it close to the explicit WHERE.
# Ratios are of mean latency against the explicit WHERE; the median over ROUNDS runs is shown.
#
# Usage: benches/tenant_rls.sh          (DATABASE_URL: a superuser URL; default local postgres)
#        SECONDS_PER_RUN=30 ROUNDS=5 benches/tenant_rls.sh
set -euo pipefail

ADMIN_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-20}
ROUNDS=${ROUNDS:-3}
CITUS_SCANS=${CITUS_SCANS:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DB=pgx_bench_tenant_rls
APP=pgx_bench_app
OWNER=pgx_bench_owner
BYPASS=pgx_bench_bypass

cargo build --quiet --manifest-path "$ROOT/Cargo.toml"
PGX="$ROOT/target/debug/pgx"
WORK=$(mktemp -d)
cleanup() {
  cd /
  rm -rf "$WORK"
  psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" \
    -c "DROP ROLE IF EXISTS $APP, $OWNER, $BYPASS" >/dev/null 2>&1 || true
}
trap cleanup EXIT

BENCH_URL=$(python3 - "$ADMIN_URL" "$DB" <<'PY'
import sys, urllib.parse as u
url, db = sys.argv[1:]
p = u.urlsplit(url)
print(u.urlunsplit((p.scheme, p.netloc, "/" + db, p.query, "")))
PY
)

psql -q -v ON_ERROR_STOP=1 "$ADMIN_URL" <<SQL
DROP DATABASE IF EXISTS $DB WITH (FORCE);
CREATE DATABASE $DB;
DROP ROLE IF EXISTS $APP, $OWNER, $BYPASS;
CREATE ROLE $APP NOSUPERUSER NOBYPASSRLS;
CREATE ROLE $OWNER NOSUPERUSER NOBYPASSRLS;
CREATE ROLE $BYPASS NOSUPERUSER BYPASSRLS;
SQL

cd "$WORK"
"$PGX" init >/dev/null
export DATABASE_URL=$BENCH_URL
"$PGX" add "create orders" --up "
CREATE TABLE tenants (id uuid PRIMARY KEY, n int NOT NULL UNIQUE);
INSERT INTO tenants SELECT ('00000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid, n FROM generate_series(0, 99) n;
CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, amount numeric(12, 2) NOT NULL,
                     created_at timestamptz NOT NULL DEFAULT now(), note text);
ALTER TABLE orders OWNER TO $OWNER;" --down "DROP TABLE orders; DROP TABLE tenants;" >/dev/null
"$PGX" migrate up
"$PGX" new tenant orders --set "references=tenants(id)" --set "role=$APP" --set global_unique=orders_pkey >/dev/null
"$PGX" migrate up

psql -q -v ON_ERROR_STOP=1 "$BENCH_URL" <<SQL
INSERT INTO orders (id, amount, note, tenant_id) OVERRIDING SYSTEM VALUE
SELECT g, (g % 1000) / 10.0, 'order ' || g, ('00000000-0000-0000-0000-' || lpad((g % 100)::text, 12, '0'))::uuid
FROM generate_series(1, 1000000) g;
CREATE TABLE orders_naive (LIKE orders INCLUDING INDEXES);
INSERT INTO orders_naive SELECT * FROM orders;
ALTER TABLE orders_naive OWNER TO $OWNER;
ALTER TABLE orders_naive ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY naive ON orders_naive USING (tenant_id = current_setting('app.current_tenant')::uuid);
GRANT SELECT ON orders_naive TO $APP;
CREATE TABLE orders_citus (LIKE orders INCLUDING INDEXES);
INSERT INTO orders_citus SELECT * FROM orders;
ALTER TABLE orders_citus OWNER TO $OWNER;
ALTER TABLE orders_citus ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY citus ON orders_citus USING (tenant_id = orders_current_tenant()) WITH CHECK (tenant_id = orders_current_tenant());
GRANT SELECT ON orders_citus TO $APP;
GRANT SELECT ON orders, orders_naive, orders_citus TO $BYPASS;
VACUUM ANALYZE orders, orders_naive, orders_citus, tenants;
SQL

# One pgbench script per (query, variant). :t picks the tenant; :k an order of that tenant
# (order g belongs to tenant g % 100).
tenant="'00000000-0000-0000-0000-' || lpad(:t::text, 12, '0')"
script() { # script QUERY VARIANT
  local role table where="" from_tenant="tenant_id = ($tenant)::uuid"
  case $2 in
    explicit) role=$BYPASS table=orders ;;
    policy) role=$APP table=orders ;;
    naive) role=$APP table=orders_naive ;;
    naive-explicit) role=$BYPASS table=orders_naive ;;
    citus) role=$APP table=orders_citus ;;
  esac
  {
    echo '\set t random(0, 99)'
    echo '\set k random(1, 9999)'
    echo 'BEGIN;'
    echo "SET LOCAL ROLE $role;"
    echo "SELECT set_config('app.current_tenant', $tenant, true);"
    case $1 in
      aggregate) [ "${2#naive-}" = explicit ] && where=" WHERE $from_tenant"
        echo "SELECT count(*), sum(amount) FROM $table$where;" ;;
      lookup) [ "${2#naive-}" = explicit ] && where=" AND $from_tenant"
        echo "SELECT id, amount, note FROM $table WHERE id = :k * 100 + :t$where;" ;;
      scan) [ "${2#naive-}" = explicit ] && where=" WHERE $from_tenant"
        echo 'SET LOCAL enable_indexscan = off;'
        echo 'SET LOCAL enable_bitmapscan = off;'
        echo "SELECT count(*), sum(amount) FROM $table$where;" ;;
    esac
    echo 'COMMIT;'
  } > "$1_$2.sql"
}
queries=(aggregate lookup scan)
variants=(explicit policy naive-explicit naive citus)
for q in "${queries[@]}"; do for v in "${variants[@]}"; do script "$q" "$v"; done; done
# The variants of each pgbench run (the Citus form's full scan is timed on its own).
run_variants() { # run_variants QUERY
  if [ "$1" = scan ]; then echo explicit policy naive-explicit naive; else echo "${variants[@]}"; fi
}

# Each variant returns the same rows.
same() { # same QUERY: runs the three scripts' query for tenant 7, order 507
  for v in "${variants[@]}"; do
    sed -e '/^\\set/d' -e 's/:t\b/7/g' -e 's/:k\b/5/g' "$1_$v.sql" | psql -qAt "$BENCH_URL" | tr '\n' ' '
    echo
  done | sort -u | wc -l
}
for q in "${queries[@]}"; do [ "$(same "$q")" = 1 ] || { echo "$q: the variants disagree" >&2; exit 1; }; done
echo "plan of the aggregate through the pgx policy:"
sed -e '/^\\set/d' -e 's/:t\b/7/g' -e 's/^SELECT count/EXPLAIN (COSTS OFF) SELECT count/' aggregate_policy.sql |
  psql -qAt "$BENCH_URL" | grep -v '^00000000-' | sed 's/^/    /'

: > results.txt
for round in $(seq "$ROUNDS"); do
  for q in "${queries[@]}"; do
    pgbench -n -M prepared -c 1 -j 1 -T "$SECONDS_PER_RUN" \
      $(printf -- "-f ${q}_%s.sql@1 " $(run_variants "$q")) "$BENCH_URL" 2>/dev/null |
      awk -v r="$round" -v q="$q" '
        /^SQL script [0-9]+: / { split($4, f, "_"); v = f[2]; sub(/\.sql$/, "", v) }
        /latency average/ && v != "" { print r, q, v, $5 }' >> results.txt
  done
  # The Citus form's full scan against the explicit WHERE on the same copy, one at a time.
  for i in $(seq "$CITUS_SCANS"); do
    for v in naive-explicit citus; do
      pgbench -n -M prepared -c 1 -j 1 -t 1 -f "scan_$v.sql" "$BENCH_URL" 2>/dev/null |
        awk -v v="$v" '/latency average/ { print v, $4 }' >> "citus_$round.txt"
    done
  done
  awk -v r="$round" '{ n[$1]++; t[$1] += $2 } END { for (v in n) print r, "scan", (v == "citus" ? "citus" : "citus-base"), t[v] / n[v] }' \
    "citus_$round.txt" >> results.txt
  echo "round $round:" $(awk -v r="$round" '$1 == r { printf "%s/%s %.3f ms  ", $2, $3, $4 }' results.txt)
done

python3 - "$ROUNDS" "$SECONDS_PER_RUN" <<'PY'
import statistics, sys
rounds, seconds = sys.argv[1:]
ms = {}
for line in open("results.txt"):
    r, q, v, x = line.split()
    ms.setdefault((q, v), {})[r] = float(x)
def med(q, v): return statistics.median(ms[q, v].values())
def ratio(q, v, base): return statistics.median(ms[q, v][r] / ms[q, base][r] for r in ms[q, v])
names = {"aggregate": "per-tenant aggregate", "lookup": "point look-up", "scan": "aggregate, full scan"}
print(f"\nmean latency per transaction (ms), median of {rounds} runs of {seconds} s:")
print(f"  {'':22}{'explicit WHERE':>16}{'pgx policy':>12}{'explicit (copy)':>17}{'naive policy':>14}{'Citus form':>12}")
for q, name in names.items():
    print(f"  {name:22}{med(q, 'explicit'):16.3f}{med(q, 'policy'):12.3f}"
          f"{med(q, 'naive-explicit'):17.3f}{med(q, 'naive'):14.3f}{med(q, 'citus'):12.3f}")
print("ratio to the explicit WHERE on the same table (goal for the pgx policy: <= 1.1):")
for q, name in names.items():
    citus_base = "citus-base" if q == "scan" else "naive-explicit"
    print(f"  {name:22} pgx policy {ratio(q, 'policy', 'explicit'):.3f}x"
          f"   naive policy {ratio(q, 'naive', 'naive-explicit'):.3f}x"
          f"   Citus form {ratio(q, 'citus', citus_base):.3f}x")
PY
