#!/usr/bin/env bash
# Times `pgx migrate up` of 300 generated migrations against psql running the same files, each
# in its own transaction, in one session (psql records no history: it is the floor). Both run
# against fresh databases, alternating, RUNS times each; the medians and their ratio are printed.
#
#   benches/migrate.sh            # uses DATABASE_URL (an admin connection) or 127.0.0.1:5432
#   RUNS=9 benches/migrate.sh
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
runs="${RUNS:-5}"
admin="${PGX_BENCH_ADMIN_URL:-${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}}"
base="${admin%/*}"

cargo build --release --locked --quiet --manifest-path "$here/Cargo.toml"
pgx="$here/target/release/pgx"

work="$(mktemp -d)"
trap 'cd /; rm -rf "$work"; for d in $(psql "$admin" -XAtc "SELECT datname FROM pg_database WHERE datname LIKE '"'"'pgx_bench_%'"'"'"); do psql "$admin" -Xqc "DROP DATABASE $d WITH (FORCE)"; done' EXIT

cd "$work"
"$pgx" init . >/dev/null
# 150 hand-written table migrations and 150 timestamps pattern migrations: 300 in all.
for i in $(seq 1 150); do
  "$pgx" add "create_t$i" \
    --up "CREATE TABLE t$i (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, total numeric(12,2));
CREATE INDEX t${i}_name ON t$i (name);
COMMENT ON TABLE t$i IS 'bench table $i';" \
    --down "DROP TABLE t$i;" >/dev/null
  "$pgx" new timestamps "t$i" >/dev/null
done
count=$(ls migrations/*.up.sql | wc -l)

# The psql baseline: one session, each file in a transaction, as pgx applies them.
for f in migrations/*.up.sql; do printf 'BEGIN;\n\\i %s\nCOMMIT;\n' "$f"; done > all.psql

now() { date +%s%N; }
pgx_times=(); psql_times=()
for r in $(seq 1 "$runs"); do
  for tool in pgx psql; do
    db="pgx_bench_${tool}_$r"
    psql "$admin" -Xqc "CREATE DATABASE $db"
    start=$(now)
    if [ "$tool" = pgx ]; then
      "$pgx" migrate up -q --database-url "$base/$db"
    else
      psql "$base/$db" -Xq -v ON_ERROR_STOP=1 -f all.psql >/dev/null
    fi
    end=$(now)
    ms=$(( (end - start) / 1000000 ))
    if [ "$tool" = pgx ]; then pgx_times+=("$ms"); else psql_times+=("$ms"); fi
    psql "$admin" -Xqc "DROP DATABASE $db WITH (FORCE)"
  done
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
p=$(median "${pgx_times[@]}"); q=$(median "${psql_times[@]}")
echo "migrations: $count, runs: $runs"
echo "pgx migrate up: median ${p} ms  (${pgx_times[*]})"
echo "psql -f:        median ${q} ms  (${psql_times[*]})"
awk -v p="$p" -v q="$q" 'BEGIN { printf "ratio pgx/psql: %.2fx (goal <= 1.20x)\n", p / q }'
