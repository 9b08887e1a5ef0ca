#!/usr/bin/env bash
# Partition pruning: a query on the latest month of a 12-month table partitioned by the
# partition pattern, against the same query on a plain table holding only that month.
#
# `events` holds ROWS rows (default 12,000,000) spread evenly over the 12 months ending with the
# current one, partitioned monthly by `pgx new partition` (the current month, 4 premade, the
# default partition, and the 11 months before, created by the infrastructure's
# create_partition); `latest` is a plain table with the same columns and indexes holding the
# latest month's rows only. Two queries on the latest month, each run by pgbench (1 client,
# SECONDS seconds, alternating tables, twice; the better run of each counts):
#   - month: count and sum over the whole month (a scan of the month's rows);
#   - hour:  count and sum over one hour of it (an index range scan).
# Then both tables get the tenant pattern (10 tenants, type bigint), and the same queries run as
# a NOSUPERUSER NOBYPASSRLS role with a tenant set. Printed: the mean latency of each, the ratio
# partitioned / plain (goal: <= 1.1), and EXPLAIN showing which partitions are scanned.
#
#   benches/partition.sh                   (DATABASE_URL: a superuser URL; default local postgres)
#   ROWS=1200000 SECONDS_PER_RUN=3 benches/partition.sh    (a quick run)
set -euo pipefail

ADMIN_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
ROWS=${ROWS:-12000000}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DB=pgx_bench_partition
APP=pgx_bench_partition_app

cargo build --locked --quiet --manifest-path "$ROOT/Cargo.toml"
PGX="$ROOT/target/debug/pgx"
WORK=$(mktemp -d)
cleanup() {
  cd /
  rm -rf "$WORK"
  psql -Xq "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "DROP ROLE IF EXISTS $APP" >/dev/null 2>&1 || true
}
trap cleanup EXIT

with_user_db() {
  python3 - "$ADMIN_URL" "$1" "$2" <<'PY'
import sys, urllib.parse as u
url, user, db = sys.argv[1:]
p = u.urlsplit(url)
host = p.netloc.split("@")[-1]
netloc = (user + "@" if user else (p.netloc.split("@")[0] + "@" if "@" in p.netloc else "")) + host
print(u.urlunsplit((p.scheme, netloc, "/" + db, p.query, "")))
PY
}
URL=$(with_user_db "" "$DB")
APP_URL=$(with_user_db "$APP" "$DB")
q() { psql -XAtq -v ON_ERROR_STOP=1 "$URL" -c "$1"; }

psql -Xq -v ON_ERROR_STOP=1 "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "DROP ROLE IF EXISTS $APP" \
  -c "CREATE DATABASE $DB" -c "CREATE ROLE $APP LOGIN NOSUPERUSER NOBYPASSRLS"
q "CREATE TABLE events (id bigint NOT NULL, at timestamptz NOT NULL, tenant_id bigint NOT NULL, value integer NOT NULL)"
PROJECT="$WORK/project"
"$PGX" init "$PROJECT" >/dev/null
cd "$PROJECT"
"$PGX" new partition events --offline --set column=at >/dev/null
"$PGX" migrate up --database-url "$URL" >/dev/null

# The month boundaries (UTC), the 11 earlier partitions, the rows, the plain table.
M0=$(q "SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'")
START=$(q "SELECT '$M0'::timestamptz - interval '11 months'")
END=$(q "SELECT '$M0'::timestamptz + interval '1 month'")
H0=$(q "SELECT '$M0'::timestamptz + interval '10 days 5 hours'")
H1=$(q "SELECT '$H0'::timestamptz + interval '1 hour'")
q "SELECT pgx_partition.create_partition('events', pgx_partition.current_period(t, now()) - k)
   FROM pgx_partition.tables t, generate_series(1, 11) k" >/dev/null
t0=$(date +%s)
q "INSERT INTO events
   SELECT g, '$START'::timestamptz + ('$END'::timestamptz - '$START'::timestamptz) * ((g - 1)::float8 / $ROWS), g % 10 + 1, g % 1000
   FROM generate_series(1, $ROWS) g" >/dev/null
q "CREATE INDEX events_at_idx ON events (at); CREATE INDEX events_tenant_at_idx ON events (tenant_id, at)"
q "CREATE TABLE latest (id bigint NOT NULL, at timestamptz NOT NULL, tenant_id bigint NOT NULL, value integer NOT NULL);
   INSERT INTO latest SELECT * FROM events WHERE at >= '$M0';
   CREATE INDEX latest_at_idx ON latest (at); CREATE INDEX latest_tenant_at_idx ON latest (tenant_id, at);
   GRANT SELECT ON events, latest TO $APP;"
q "VACUUM ANALYZE events"; q "VACUUM ANALYZE latest"
echo "partition: $ROWS rows over 12 months ($(q "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass") partitions), $(q "SELECT count(*) FROM latest") in the latest month; loaded in $(( $(date +%s) - t0 )) s"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# Mean latency (ms) of $2 (SQL) run by pgbench as the URL $1, with session settings $3
# (PGOPTIONS, e.g. the tenant).
latency() {
  printf '%s\n' "$2" > "$WORK/q.sql"
  PGOPTIONS="$3" pgbench -n -c 1 -T "$SECONDS_PER_RUN" -f "$WORK/q.sql" "$1" 2>&1 | awk '/latency average/ { print $4 }'
}

# Runs query $2 on both tables as URL $1 (with setting $3), twice each alternating, and prints
# the better mean of each and their ratio.
compare() {
  local name=$1 url=$2 sql=$3 set=${4:-}
  local p1 l1 p2 l2
  p1=$(latency "$url" "${sql//TABLE/events}" "$set"); l1=$(latency "$url" "${sql//TABLE/latest}" "$set")
  p2=$(latency "$url" "${sql//TABLE/events}" "$set"); l2=$(latency "$url" "${sql//TABLE/latest}" "$set")
  python3 - "$name" "$p1" "$p2" "$l1" "$l2" <<'PY'
import sys
name, p1, p2, l1, l2 = sys.argv[1], *map(float, sys.argv[2:])
p, l = min(p1, p2), min(l1, l2)
print(f"   {name:<14} partitioned {p:8.3f} ms   plain {l:8.3f} ms   ratio {p / l:.3f}   (runs {p1:.3f}/{p2:.3f} vs {l1:.3f}/{l2:.3f})")
PY
}

MONTH="SELECT count(*), sum(value) FROM TABLE WHERE at >= '$M0' AND at < '$END';"
HOUR="SELECT count(*), sum(value) FROM TABLE WHERE at >= '$H0' AND at < '$H1';"
scanned() {  # the relations a plan reads
  PGOPTIONS="$2" psql -XAtq "$1" -c "EXPLAIN ${3//TABLE/events}" | grep -oE '(Scan|Scan using [a-z_0-9]+) on [a-z_0-9]+' | sed 's/.* on //' | sort -u | tr '\n' ' '
}

echo "== no row security (as the owner)"
compare month "$URL" "$MONTH"
compare hour "$URL" "$HOUR"
echo "   EXPLAIN month scans: $(scanned "$URL" "" "$MONTH")"
echo "   EXPLAIN hour scans:  $(scanned "$URL" "" "$HOUR")"

# The tenant pattern on both tables (the tenant column exists: add_column=false).
"$PGX" new tenant events --offline --set type=bigint --set add_column=false --set partitioned=true --set role=$APP >/dev/null 2>&1
"$PGX" new tenant latest --offline --set type=bigint --set add_column=false --set role=$APP >/dev/null 2>&1
"$PGX" migrate up --database-url "$URL" >/dev/null
TENANT="-c app.current_tenant=3"
echo "== tenant policy, as $APP (NOSUPERUSER NOBYPASSRLS), tenant 3 of 10"
compare month "$APP_URL" "$MONTH" "$TENANT"
compare hour "$APP_URL" "$HOUR" "$TENANT"
echo "   EXPLAIN month scans: $(scanned "$APP_URL" "$TENANT" "$MONTH")"
echo "   EXPLAIN hour scans:  $(scanned "$APP_URL" "$TENANT" "$HOUR")"
echo "   rows seen: $(PGOPTIONS="$TENANT" psql -XAtq "$APP_URL" -c "${MONTH//TABLE/events}") (partitioned), $(PGOPTIONS="$TENANT" psql -XAtq "$APP_URL" -c "${MONTH//TABLE/latest}") (plain)"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
