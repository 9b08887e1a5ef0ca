#!/usr/bin/env bash
# The floor under any jsonb audit log: a bulk INSERT of 200,000 rows into a plain table vs the
# same table with the cheapest statement-level trigger that still writes one jsonb row per row
# (transaction id, time, names, operation, key, new row; no index on the log at all). Whatever
# pgx's audit pattern adds (actor, exclusions, history index, security) comes on top of this.
#
#   benches/audit_floor.sh        # DATABASE_URL (an admin connection) or 127.0.0.1:5432
set -euo pipefail
admin="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
db="pgx_bench_audit_floor_$$"
base="${admin%/*}"
psql "$admin" -Xqc "CREATE DATABASE $db"
trap 'psql "$admin" -Xqc "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT

psql "$base/$db" -Xq <<'SQL'
CREATE TABLE plain (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer_id bigint, status text, amount numeric(12,2), note text, created_at timestamptz DEFAULT now());
CREATE TABLE logged (LIKE plain INCLUDING ALL);
CREATE TABLE log (id bigint GENERATED ALWAYS AS IDENTITY, txid xid8, logged_at timestamptz, schema_name text, table_name text, operation text, row_key jsonb, new_row jsonb);
CREATE FUNCTION capture() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO log (txid, logged_at, schema_name, table_name, operation, row_key, new_row)
  SELECT pg_current_xact_id(), now(), TG_TABLE_SCHEMA, TG_TABLE_NAME, 'INSERT', jsonb_build_object('id', n.id), to_jsonb(n)
    FROM new_rows n;
  RETURN NULL;
END $$;
CREATE TRIGGER capture AFTER INSERT ON logged REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION capture();
SQL

run() {
  psql "$base/$db" -Xq -c '\timing on' \
    -c "INSERT INTO $1 (customer_id, status, amount, note) SELECT g % 1000, 'new', g * 0.01, 'note ' || g FROM generate_series(1, 200000) g" \
    | awk '/^Time:/ {print $2}'
}
plain=(); logged=()
for _ in 1 2 3; do
  psql "$base/$db" -Xqc "TRUNCATE plain, logged, log"
  plain+=("$(run plain)"); logged+=("$(run logged)")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
p=$(median "${plain[@]}"); l=$(median "${logged[@]}")
echo "plain bulk INSERT:            median ${p} ms  (${plain[*]})"
echo "minimal jsonb statement log:  median ${l} ms  (${logged[*]})"
awk -v p="$p" -v l="$l" 'BEGIN { printf "floor ratio: %.2fx\n", l / p }'
