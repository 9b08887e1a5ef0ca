#!/usr/bin/env bash
# Mutation check: applies deliberate defects to templates and source, one at a time, in a
# scratch copy of the committed tree (never the working tree), runs the tests that should notice
# each, and prints which mutants survive and the score. A survivor is a guarantee no test
# defends: write the behaviour test that kills it.
#
#   benches/mutants.sh                 # every mutant (PGX_TEST_ADMIN_URL or DATABASE_URL:
#                                      # an admin connection; else the tests' own dev cluster)
#   benches/mutants.sh NAME...         # only these mutants
#   benches/mutants.sh --list          # the mutants, their files and the tests they run
#   PGX_MUTANTS_BASELINE=0 benches/mutants.sh   # skip the run of the unmutated tree
#
# Each mutant is `name~file~perl substitution~test filters`: the substitution (perl -0pe, so it
# may span lines) must change the file, or the mutant is reported as stale (the code moved on:
# update its pattern). The filters are libtest name filters (`module::` or a test name) that
# keep each run short. A mutant is killed when its tests fail, survives when they pass, and is
# invalid when the mutated tree does not build. The committed HEAD is mutated: commit first.
set -uo pipefail

MUTANTS=$(cat <<'EOF'
timestamps_execute_to_public~templates/timestamps/up.sql.tera~s/^REVOKE ALL ON FUNCTION \{\{ fn \}\}\(\) FROM PUBLIC;/GRANT EXECUTE ON FUNCTION {{ fn }}() TO PUBLIC;/m~timestamps::
timestamps_created_at_mutable~templates/timestamps/up.sql.tera~s/:= OLD\./:= NEW./~timestamps::
timestamps_insert_not_covered~templates/timestamps/up.sql.tera~s/BEFORE INSERT OR UPDATE ON/BEFORE UPDATE ON/~timestamps::
timestamps_owner_not_granted~templates/timestamps/up.sql.tera~s/IF owner OPERATOR\(pg_catalog.<>\) CURRENT_USER THEN/IF false THEN/~timestamps::partitions
timestamps_import_for_everyone~templates/timestamps/up.sql.tera~s/IF pg_catalog.pg_has_role\(/IF true OR pg_catalog.pg_has_role(/~timestamps::import
audit_definer_search_path_unpinned~templates/audit_install/_definer.sql.tera~s/^\s*SET search_path = pg_catalog, pg_temp\n//m~audit::a_search_path_hijack audit_security::a_search_path_with
audit_log_readable_by_public~templates/audit_install/_privileges.sql.tera~s/^REVOKE ALL ON TABLE \{\{ log \}\}, \{\{ audited \}\} FROM PUBLIC;/GRANT SELECT ON TABLE {{ log }} TO PUBLIC;/m~audit::the_log_is_append_only
tenant_row_security_not_forced~templates/tenant/_policies.sql.tera~s/, FORCE ROW LEVEL SECURITY;/;/~tenant_rls::the_owning_role tenant_rls_restore::
tenant_down_forgets_forced~templates/tenant/_restore.sql.tera~s/CASE WHEN coalesce\(\(reg.restore ->> 'force_row_security'\)::boolean, false\) THEN/CASE WHEN false THEN/~tenant_rls_restore::
tenant_down_forgets_enabled~templates/tenant/_restore.sql.tera~s/CASE WHEN coalesce\(\(reg.restore ->> 'row_security'\)::boolean, false\) THEN/CASE WHEN false THEN/~tenant_rls_restore::
tenant_interrupted_index_kept~templates/tenant/_steps.sql.tera~s/AND NOT i.indisvalid/AND false/~tenant_concurrently::an_interrupted
tenant_partition_helper_to_public~templates/pgx_install/_tenant_partitions.sql.tera~s/^REVOKE ALL ON FUNCTION \{\{ new_partitions_fn \}\}\(\) FROM PUBLIC;/GRANT EXECUTE ON FUNCTION {{ new_partitions_fn }}() TO PUBLIC;/m~tenant_partitions:: plpgsql_lint::
search_trigger_to_public~templates/search/up.sql.tera~s/^REVOKE ALL ON FUNCTION \{\{ trigger_fn \}\}\(\) FROM PUBLIC;/GRANT EXECUTE ON FUNCTION {{ trigger_fn }}() TO PUBLIC;/m~search_security:: plpgsql_lint::
owned_schema_any_owner~templates/_shared/owned_schema.sql.tera~s/IF owner_oid <> pg_catalog.to_regrole\(CURRENT_USER\)/IF false AND owner_oid <> pg_catalog.to_regrole(CURRENT_USER)/~tenant_security::pgx_refuses_a_schema partition::the_infrastructure_is_not_installed
owned_schema_ignores_create_grants~templates/_shared/owned_schema.sql.tera~s/a.privilege_type = 'CREATE'/a.privilege_type = 'NONE'/~tenant_security::pgx_refuses_a_schema partition::the_infrastructure_is_not_installed
soft_delete_bypassrls_role_accepted~templates/soft_delete/up.sql.tera~s/AND \(r.rolsuper OR r.rolbypassrls\)\)/AND false)/~soft_delete::hide_policy
partition_default_not_forced~templates/partition/_maintain.sql.tera~s/EXECUTE format\('ALTER TABLE %s FORCE ROW LEVEL SECURITY', dflt\);/NULL;/~partition::a_partition_created_later partition::rows_for_a_month
new_overwrites_files~src/migrate/files.rs~s/persist_noclobber\(path\)/persist(path)/~cli::versions_strictly cli::concurrent_new cli::init_scaffolds
new_without_directory_lock~src/migrate/files.rs~s/let _turn = lock_dir\(dir\)\?;//~cli::concurrent_new
new_version_off_by_one~src/migrate/files.rs~s/Some\(max\) if max >= candidate =>/Some(max) if max > candidate =>/~cli::versions_strictly
ident_accepts_control_characters~src/sql/quote.rs~s/name.chars\(\).any\(char::is_control\)/false/~hostile::names_over
dollar_quote_fixed_tag~src/pattern/filters.rs~s/\.find\(\|tag\| format!/.find(|tag| true || format!/~hostile::dollar_quote_tags
runner_without_migration_lock~src/migrate/runner/session.rs~s/SELECT pg_catalog.pg_try_advisory_lock\(\$1\)/SELECT true OR pg_catalog.pg_try_advisory_lock(\$1)/~migrate::parallel
history_owned_by_anyone~src/migrate/history.rs~s/c.relowner OPERATOR\(pg_catalog.=\) ANY \(ARRAY\(SELECT oid FROM trusted\)\)/true/~history_trust::
snapshot_without_force_flag~src/db/snapshot.rs~s/^\s*CASE WHEN c.relforcerowsecurity THEN 'force-row-security' END,\n//m~catalog_snapshot:: tenant_rls_restore:: tenant_security::a_down_restores
EOF
)

root=$(git rev-parse --show-toplevel) || exit 2
if [[ ${1:-} == --list ]]; then
  printf '%s\n' "$MUTANTS" | awk -F'~' '{printf "%-40s %-48s %s\n", $1, $2, $4}'
  exit 0
fi
wanted=" $* "

# The scratch tree stays at one path and the target folder persists between runs, so that
# cargo rebuilds only pgx itself for each mutant. It starts as a copy of the working tree's
# target (dependencies built already); it is separate, so the working tree's binaries stay.
work="${PGX_MUTANTS_DIR:-$root/target/mutants}"
tree="$work/tree"
pristine="$work/pristine"
export CARGO_TARGET_DIR="$work/target"
mkdir -p "$work"
if [[ ! -d $CARGO_TARGET_DIR && -d $root/target/debug ]]; then
  mkdir -p "$CARGO_TARGET_DIR" && cp -a "$root/target/debug" "$CARGO_TARGET_DIR/debug"
fi
rm -rf "$pristine" && mkdir -p "$pristine"
git -C "$root" archive HEAD | tar -x -C "$pristine"
mkdir -p "$tree"
# rsync -c: only files whose content differs are touched, so cargo's fingerprints stay valid.
sync_tree() { rsync -a -c --delete "$pristine/" "$tree/"; }

log="$work/log"
mkdir -p "$log"
run_tests() { # filters...; output in $log/$name
  (cd "$tree" && timeout 900 cargo test -q --test it -- "$@") >"$log/$name" 2>&1
}

echo "mutating $(git -C "$root" rev-parse --short HEAD) in $tree; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
sync_tree
name=baseline
all_filters=$(printf '%s\n' "$MUTANTS" | cut -d'~' -f4 | tr ' ' '\n' | sort -u | tr '\n' ' ')
if [[ $wanted == "  " && ${PGX_MUTANTS_BASELINE:-1} != 0 ]]; then
  # The unmutated tree must pass the tests the mutants use, or a failure proves nothing.
  # shellcheck disable=SC2086
  if ! run_tests $all_filters; then
    echo "baseline: the unmutated tree fails its tests (see $log/baseline); no score"
    exit 1
  fi
  echo "baseline: pass"
fi

killed=0 survived=0 invalid=0 stale=0
survivors=()
while IFS='~' read -r name file subst filters; do
  [[ -z $name ]] && continue
  [[ $wanted != "  " && $wanted != *" $name "* ]] && continue
  sync_tree
  if [[ ! -f $tree/$file ]] || ! perl -0pi -e "$subst" "$tree/$file" || cmp -s "$tree/$file" "$pristine/$file"; then
    echo "STALE     $name ($file: the substitution changes nothing)"
    stale=$((stale + 1))
    continue
  fi
  if ! (cd "$tree" && cargo test -q --test it --no-run) >"$log/$name.build" 2>&1; then
    echo "INVALID   $name (does not build: $log/$name.build)"
    invalid=$((invalid + 1))
    continue
  fi
  start=$(date +%s)
  # shellcheck disable=SC2086
  run_tests $filters
  status=$?
  if grep -q '^running 0 tests' "$log/$name"; then
    echo "NO TESTS  $name (no test matches $filters: update the filters)"
    stale=$((stale + 1))
  elif [[ $status == 0 ]]; then
    echo "SURVIVED  $name ($filters; $(($(date +%s) - start)) s)"
    survived=$((survived + 1))
    survivors+=("$name")
  else
    echo "killed    $name by $(grep -m3 -oE '^    [a-z_:0-9]+$' "$log/$name" | tr -d ' ' | paste -sd, -) ($(($(date +%s) - start)) s)"
    killed=$((killed + 1))
  fi
done <<<"$MUTANTS"
sync_tree

total=$((killed + survived))
echo "score: $killed of $total killed ($((total ? 100 * killed / total : 0))%); invalid $invalid, stale $stale; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
[[ ${#survivors[@]} -eq 0 ]] || echo "survivors: ${survivors[*]}"
[[ $survived -eq 0 && $stale -eq 0 ]]
