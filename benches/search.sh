#!/usr/bin/env bash
# Full-text search with the pattern `pgx new search` renders, against its baselines in the same
# run. Two parts (PART=ranking, PART=online, or both by default).
#
# ranking: 1,000,000 documents over 100 tenants (rows of all tenants interleaved on every page).
#   Text: English-like sentences, 40% stop words and 60% words of the system dictionary
#   (wamerican) drawn with Zipf's law (rank r with probability ~ 1/r), as natural text has them;
#   a title of 12 words and a body of 8 sentences (about 100 words). The table has the tenant
#   pattern (integer tenants) and search over title:A,body led by the tenant column, with the
#   leakproof operator. A search term is one of 20 dictionary words of a band, picked at random
#   per query: common (Zipf ranks 500 to 5,000: each word in about 0.1% to 1% of the documents)
#   or rare (ranks 5,000 to 50,000: 0.01% to 0.1%). Ranking cost grows with the matches.
#     - ilike:    the usual snippet, `title ILIKE '%term%' OR body ILIKE '%term%'`, title matches
#                 first, top 10 (every row must be read to rank); ILIKE_QUERIES queries a round;
#     - search:   `docs_search(term)`, the top 10 by ts_rank_cd, by a BYPASSRLS role (all
#                 tenants), SECONDS_PER_RUN/2 seconds right after the ILIKE queries of its band;
#     - explicit: the search function's query with `tenant_id = t` written into it, by the
#                 BYPASSRLS role: the same search without row security;
#     - policy:   `docs_search(term)` by the application role (NOSUPERUSER NOBYPASSRLS), tenant t
#                 set, through the tenant policy: one index scan on (tenant, vector) with the
#                 leakproof operator;
#     - policy-plain: the same function with PostgreSQL's @@ (what `leakproof: false` renders),
#                 which row security lets the index use only for the tenant.
#   explicit, policy and policy-plain (common terms) are scripts of one pgbench run, picked at
#   random per transaction. All runs use -M prepared; latencies are pgbench's per-statement
#   averages of the search statement alone. Ratios are per round (ILIKE against the search of its
#   band, the policy variants against explicit); the median of ROUNDS rounds is shown.
#
# online: 1,000,000 documents (no tenants); pgbench writers (2 clients, one UPDATE of a random
#   row and one INSERT per transaction) run while `pgx migrate up` applies
#   `pgx new search live --set online=true` (column and trigger, backfill in committed batches,
#   CREATE INDEX CONCURRENTLY). Every write's latency is logged; the longest during the
#   migration is the stall (goal: <= 200 ms), next to the longest before it.
#
# Usage: benches/search.sh      (DATABASE_URL: a superuser URL; default local postgres)
#        DOCS=20000 SECONDS_PER_RUN=3 ROUNDS=1 benches/search.sh   (a quick try of the script)
#        PART=online benches/search.sh;  SECONDS_PER_RUN=30 ROUNDS=5 benches/search.sh
#        PART=online ONLINE_SETS='--set fastupdate=false' benches/search.sh
set -euo pipefail

ADMIN_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-20}
ILIKE_QUERIES=${ILIKE_QUERIES:-2}
ROUNDS=${ROUNDS:-3}
PART=${PART:-all}
DOCS=${DOCS:-1000000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DB=pgx_bench_search
APP=pgx_bench_search_app
BYPASS=pgx_bench_search_bypass
WORDS=/usr/share/dict/words

if [ ! -r "$WORDS" ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wamerican >/dev/null
fi
cargo build --quiet --manifest-path "$ROOT/Cargo.toml"
PGX="$ROOT/target/debug/pgx"
WORK=$(mktemp -d)
WRITERS=
cleanup() {
  cd /
  [ -n "$WRITERS" ] && kill "$WRITERS" 2>/dev/null
  rm -rf "$WORK"
  psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" \
    -c "DROP ROLE IF EXISTS $APP, $BYPASS" >/dev/null 2>&1 || true
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
DROP ROLE IF EXISTS $APP, $BYPASS;
CREATE ROLE $APP NOSUPERUSER NOBYPASSRLS;
CREATE ROLE $BYPASS NOSUPERUSER BYPASSRLS;
SQL

# The dictionary, in a fixed random order (rank 1 is the most frequent word), and 200,000
# sentences of 12 words; documents are made of sentences.
grep -E '^[a-z]{3,}$' "$WORDS" | psql -q -v ON_ERROR_STOP=1 "$BENCH_URL" -c "
CREATE TABLE words (w text PRIMARY KEY);
COPY words FROM STDIN;"
echo "generating 200,000 sentences and $DOCS documents..."
psql -q -v ON_ERROR_STOP=1 -v docs="$DOCS" "$BENCH_URL" <<'SQL'
SELECT setseed(0.42);
CREATE TABLE ranked AS SELECT row_number() OVER (ORDER BY md5(w)) AS rank, w FROM words;
ALTER TABLE ranked ADD PRIMARY KEY (rank);
CREATE TABLE stop_words AS
SELECT row_number() OVER () AS n, w
FROM unnest(string_to_array('the of and a to in is you that it he was for on are as with his they i at be this have from or one had by word but not what all were we when your can said there use an each which she do how their if will up other about out many then them these so some her would make like him into time has look two more write go see number no way could people my than first water been call who oil its now find', ' ')) w;
CREATE TABLE picks AS
SELECT s, i, random() < 0.4 AS stop, random() AS u FROM generate_series(1, 200000) s, generate_series(1, 12) i;
CREATE TABLE sentences AS
SELECT p.s, string_agg(coalesce(sw.w, r.w), ' ' ORDER BY p.i) AS txt
FROM picks p
LEFT JOIN stop_words sw ON p.stop AND sw.n = 1 + floor(p.u * (SELECT count(*) FROM stop_words))::int
LEFT JOIN ranked r ON NOT p.stop AND r.rank = floor(exp(p.u * ln((SELECT count(*) FROM ranked)::float8)))::int
GROUP BY p.s;
DROP TABLE picks;
ALTER TABLE sentences ADD PRIMARY KEY (s);
CREATE TABLE corpus AS
SELECT g AS id, t.txt AS title, b.body
FROM generate_series(1, :docs) g
JOIN sentences t ON t.s = 1 + (g::int8 * 7919) % 200000
CROSS JOIN LATERAL (SELECT string_agg(x.txt, '. ' ORDER BY k.k) || '.' AS body
                    FROM generate_series(1, 8) k(k)
                    JOIN sentences x ON x.s = 1 + (g::int8 * 104729 + k.k * 15485863) % 200000) b;
-- Search terms, 20 per band: common words (Zipf ranks 500 to 5,000, each in about 0.1% to 1%
-- of the documents) and rarer ones (ranks 5,000 to 50,000: 0.01% to 0.1%).
CREATE TABLE terms AS
SELECT band, row_number() OVER (PARTITION BY band ORDER BY md5(w)) AS i, w
FROM (SELECT *, row_number() OVER (PARTITION BY band ORDER BY md5(w)) AS pick
      FROM (SELECT w, CASE WHEN rank <= 5000 THEN 'common' ELSE 'rare' END AS band
            FROM ranked WHERE rank BETWEEN 500 AND 50000 AND length(w) >= 5) r) p
WHERE pick <= 20;
SQL

cd "$WORK"
"$PGX" init >/dev/null
export DATABASE_URL=$BENCH_URL

ranking() {
  "$PGX" add "create docs" --up "
CREATE TABLE docs (id bigint PRIMARY KEY, title text NOT NULL, body text NOT NULL);
GRANT SELECT ON docs TO $BYPASS;" --down "DROP TABLE docs;" >/dev/null
  "$PGX" new tenant docs --set type=integer --set "role=$APP" --set global_unique=docs_pkey >/dev/null
  "$PGX" migrate up
  psql -q -v ON_ERROR_STOP=1 "$BENCH_URL" -c \
    "INSERT INTO docs (id, tenant_id, title, body) SELECT id, id % 100, title, body FROM corpus"
  echo "adding search (generated column over $DOCS rows, then the GIN index)..."
  "$PGX" new search docs --set columns=title:A,body --set tenant_column=tenant_id \
    --set leakproof=true --set rewrite_limit_mb=0 >/dev/null
  "$PGX" migrate up -v
  # What leakproof=false renders: the same function with PostgreSQL's @@.
  psql -q -v ON_ERROR_STOP=1 "$BENCH_URL" <<SQL
SELECT replace(replace(pg_get_functiondef('docs_search(text, integer, integer, boolean)'::regprocedure),
               'OPERATOR(search.@@)', '@@'), 'docs_search', 'docs_search_plain') \gexec
GRANT SELECT ON terms TO $APP, $BYPASS;
VACUUM ANALYZE docs;
SQL

  script() { # script VARIANT [BAND]
    {
      echo '\set t random(0, 99)'
      echo '\set i random(1, 20)'
      echo 'BEGIN;'
      case $1 in policy*) echo "SET LOCAL ROLE $APP;" ;; *) echo "SET LOCAL ROLE $BYPASS;" ;; esac
      echo "SELECT set_config('app.current_tenant', :t::text, true);"
      echo "SELECT w AS term FROM terms WHERE band = '${2:-common}' AND i = :i \\gset"
      case $1 in
        ilike) echo "SELECT id FROM docs WHERE title ILIKE '%' || :term || '%' OR body ILIKE '%' || :term || '%' ORDER BY title ILIKE '%' || :term || '%' DESC, id LIMIT 10;" ;;
        search | policy) echo 'SELECT (hit).id, rank FROM docs_search(:term);' ;;
        policy-plain) echo 'SELECT (hit).id, rank FROM docs_search_plain(:term);' ;;
        explicit) echo "SELECT h.id, h.rank FROM (SELECT t.id, pg_catalog.ts_rank_cd(t.search, (SELECT websearch_to_tsquery('english', :term))) AS rank, t.ctid AS row_id FROM docs AS t WHERE t.tenant_id = :t AND t.search @@ websearch_to_tsquery('english', :term) ORDER BY rank DESC, row_id LIMIT 10) AS h ORDER BY h.rank DESC, h.row_id;" ;;
      esac
      echo 'COMMIT;'
    } > "$1${2:+-$2}.sql"
  }
  for band in common rare; do script ilike "$band"; script search "$band"; done
  for v in explicit policy policy-plain; do script "$v"; done

  term=$(psql -qAt "$BENCH_URL" -c "SELECT w FROM terms WHERE band = 'common' AND i = 1")
  echo "plans for tenant 7, term $term:"
  for v in search-common policy policy-plain; do
    echo "  $v:"
    sed -e '/^\\set/d' -e 's/:t\b/7/g' -e 's/:i\b/1/g' -e 's/ \\gset$/;/' -e "s/:term/'$term'/g" \
        -e 's/^SELECT (hit)/EXPLAIN (COSTS OFF) SELECT (hit)/' "$v.sql" |
      psql -qAt "$BENCH_URL" | grep -E 'Index Cond|Filter|Scan' | sed 's/^/      /'
  done

  : > results.txt
  stats() { # stats ROUND PGBENCH-ARGS...: the search statement's mean latency per script
    local round=$1
    shift
    pgbench -n -M prepared -r -c 1 -j 1 "$@" "$BENCH_URL" 2>/dev/null |
      awk -v r="$round" '
        /^SQL script [0-9]+: / { v = $4; sub(/\.sql$/, "", v) }
        /^transaction type: / && v == "" { v = $3; sub(/\.sql$/, "", v) }
        /^ +[0-9.]+ +[0-9]+ +SELECT / && v != "" && !/set_config|FROM terms/ { print r, v, $1 }' >> results.txt
  }
  for round in $(seq "$ROUNDS"); do
    # ILIKE reads every row (seconds a query): a fixed number of queries, each next to a
    # stretch of ranked searches of the same band.
    for band in common rare; do
      stats "$round" -t "$ILIKE_QUERIES" -f "ilike-$band.sql"
      stats "$round" -T "$((SECONDS_PER_RUN / 2))" -f "search-$band.sql"
    done
    stats "$round" -T "$SECONDS_PER_RUN" -f explicit.sql@1 -f policy.sql@1 -f policy-plain.sql@1
    echo "round $round:" $(awk -v r="$round" '$1 == r { printf "%s %.3f ms  ", $2, $3 }' results.txt)
  done

  python3 - "$ROUNDS" "$SECONDS_PER_RUN" <<'PY'
import statistics, sys
rounds, seconds = sys.argv[1:]
ms = {}
for line in open("results.txt"):
    r, v, x = line.split()
    ms.setdefault(v, {})[r] = float(x)
def med(v): return statistics.median(ms[v].values())
def ratio(v, base): return statistics.median(ms[v][r] / ms[base][r] for r in ms[v])
print(f"\nmean latency of the search statement (ms), median of {rounds} rounds:")
for v in ["ilike-common", "search-common", "ilike-rare", "search-rare", "explicit", "policy", "policy-plain"]:
    print(f"  {v:14}{med(v):12.3f}")
print(f"ILIKE / ranked search, terms in 0.1-1% of rows:    {ratio('ilike-common', 'search-common'):8.1f}x")
print(f"ILIKE / ranked search, terms in 0.01-0.1% of rows: {ratio('ilike-rare', 'search-rare'):8.1f}x (goal >= 100x)")
print(f"under the tenant policy / explicit (goal <= 2x):   {ratio('policy', 'explicit'):8.2f}x")
print(f"  the same with PostgreSQL's @@ (leakproof: false): {ratio('policy-plain', 'explicit'):8.2f}x")
PY
}

online() {
  "$PGX" add "create live" --up "
CREATE TABLE live (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, title text NOT NULL, body text NOT NULL);
INSERT INTO live (id, title, body) SELECT id, title, body FROM corpus;
SELECT setval(pg_get_serial_sequence('live', 'id'), $DOCS);" --down "DROP TABLE live;" >/dev/null
  "$PGX" migrate up
  psql -q "$BENCH_URL" -c "VACUUM ANALYZE live"
  cat > writes.sql <<SQL
\set id random(1, $DOCS)
UPDATE live SET title = 'edited title ' || :id WHERE id = :id;
INSERT INTO live (title, body) VALUES ('a new row', 'written while search is added');
SQL
  # Writers in back-to-back 5-second pgbench runs (each writes its log when it ends) until told
  # to stop; every transaction's latency and end time is logged.
  touch writing
  (
    n=0
    while [ -e writing ]; do
      n=$((n + 1))
      pgbench -n -c 2 -j 2 -T 5 -f writes.sql --log --log-prefix="w$n" "$BENCH_URL" >/dev/null 2>&1 || true
    done
  ) &
  WRITERS=$!
  sleep 12
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  "$PGX" new search live --set columns=title:A,body --set online=true ${ONLINE_SETS:-} >/dev/null
  "$PGX" migrate up -v 2>&1 | while read -r line; do echo "$(date +%s.%N) $line"; done | tee steps.txt
  end=$(date +%s.%N)
  echo "steps ended at (s after the start):" $(awk -v s="$start" '{ printf "%.1f ", $1 - s }' steps.txt)
  sleep 6
  rm writing
  wait "$WRITERS"
  WRITERS=
  psql -qAt "$BENCH_URL" -c "SELECT 'rows without their vector: ' || count(*) FROM live WHERE search IS NULL"
  cat w[0-9]*.* | python3 -c '
import sys
start, end = map(float, sys.argv[1:])
before, during, slow = [], [], []
for line in sys.stdin:
    f = line.split()
    latency_ms, done = int(f[2]) / 1000, int(f[4]) + int(f[5]) / 1e6
    began = done - latency_ms / 1000
    if done < start: before.append(latency_ms)
    elif began <= end:
        during.append(latency_ms)
        slow.append((latency_ms, done))
def p(xs, q): xs = sorted(xs); return xs[min(len(xs) - 1, int(q * len(xs)))]
print(f"\nwrites before the migration: {len(before)}, longest {max(before):.1f} ms, p99 {p(before, .99):.1f} ms")
print(f"writes during the migration ({end - start:.1f} s): {len(during)}, longest {max(during):.1f} ms (goal <= 200 ms), p99 {p(during, .99):.1f} ms")
slowest = sorted(slow, reverse=True)[:5]
print("slowest writes (ms, ended at s after the start):", ", ".join(f"{l:.0f} at {t - start:.1f}" for l, t in slowest))
' "$start" "$end"
}

case $PART in
  ranking) ranking ;;
  online) online ;;
  all) ranking; online ;;
  *) echo "PART must be ranking, online or all" >&2; exit 2 ;;
esac
