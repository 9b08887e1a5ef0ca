#!/usr/bin/env bash
# Times `pgx check` on 300 generated migrations against its floor measured in the same run:
# applying the same migrations up, down and up again once with `pgx migrate` (on a fresh
# database). `pgx check` does that much migrating too, plus the catalog snapshots that prove each
# down; the ratio shows what proving costs. Goal: check <= 3x the migrations alone.
#
#   benches/check.sh            # uses DATABASE_URL (an admin connection) or 127.0.0.1:5432
#   N=100 benches/check.sh      # 2*N migrations
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
n="${N:-150}"
admin="${PGX_BENCH_ADMIN_URL:-${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}}"
base="${admin%/*}"

cargo build --release --locked --quiet --manifest-path "$here/Cargo.toml"
pgx="$here/target/release/pgx"

work="$(mktemp -d)"
db="pgx_bench_check_$$"
trap 'cd /; rm -rf "$work"; psql "$admin" -Xqc "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT

cd "$work"
"$pgx" init . >/dev/null
# Half hand-written tables (with an index, a comment, a view on the previous table), half
# timestamps pattern migrations (a trigger function and a trigger each).
for i in $(seq 1 "$n"); do
  view=""
  if [ "$i" -gt 1 ]; then view="CREATE VIEW v$i AS SELECT id, name FROM t$((i - 1));"; fi
  "$pgx" add "create_t$i" \
    --up "CREATE TABLE t$i (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, total numeric(12,2));
CREATE INDEX t${i}_name ON t$i (name);
COMMENT ON TABLE t$i IS 'bench table $i';
$view" \
    --down "DROP VIEW IF EXISTS v$i; DROP TABLE t$i;" >/dev/null
  "$pgx" new timestamps "t$i" --offline >/dev/null
done
count=$(ls migrations/*.up.sql | wc -l)

now() { date +%s%N; }
ms_since() { echo $(( ($(now) - $1) / 1000000 )); }

psql "$admin" -Xqc "CREATE DATABASE $db TEMPLATE template0"
start=$(now)
"$pgx" migrate up -q --database-url "$base/$db"
"$pgx" migrate down -q --target 0 --database-url "$base/$db"
"$pgx" migrate up -q --database-url "$base/$db"
migrate_ms=$(ms_since "$start")

start=$(now)
"$pgx" check --database-url "$admin" >/dev/null 2>check.err || { cat check.err; exit 1; }
check_ms=$(ms_since "$start")

echo "migrations: $count; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "pgx migrate up, down, up: ${migrate_ms} ms"
echo "pgx check:                ${check_ms} ms"
awk -v c="$check_ms" -v m="$migrate_ms" 'BEGIN { printf "ratio check/migrate: %.2fx (goal <= 3x)\n", c / m }'
