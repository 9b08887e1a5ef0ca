//! `pgx baseline`: an existing database's schema as the first migration pair, recorded as
//! applied on that database without running it.
//!
//! The up file is pg_dump's script made to run as one migration: psql meta-commands
//! (`\restrict`) removed, and the dump's session settings (`SET search_path`, `row_security`...)
//! made `SET LOCAL`, so they end with the migration's transaction instead of leaking into the
//! migrations applied after it in the same session. The down file either refuses to run (the
//! default: reverting a baseline would drop the whole schema) or, with `--reversible`, is
//! pg_restore's `--clean` statements: every object the dump created, dropped in dependency order.

use crate::db::dump::SchemaDump;
use crate::sql;

/// The line a down migration carries when it refuses on purpose; `pgx check` then proves the
/// migrations above it and stops there.
pub const IRREVERSIBLE: &str = "-- pgx check: irreversible";

/// The up file.
pub fn up_sql(dump: &SchemaDump) -> String {
    let mut out = format!(
        "-- pgx {}: baseline: the schema of an existing database, dumped with {} --schema-only.\n\
         -- It was recorded as applied on that database without running; elsewhere (new\n\
         -- environments, pgx check) it creates the schema from zero. The dump's session settings\n\
         -- are SET LOCAL here, so they end with this migration's transaction.\n",
        env!("CARGO_PKG_VERSION"),
        dump.dumped_by
    );
    // pg_dump empties search_path (its statements are qualified); the history row is written
    // after the file in the same transaction, by pgx or sqlx, with an unqualified name, so the
    // session's own search_path comes back at the end.
    out.push_str(&format!(
        "\nSELECT pg_catalog.set_config({SAVED:?}, pg_catalog.current_setting('search_path'), true);\n"
    ).replace('"', "'"));
    out.push_str(&localise_settings(&without_meta_commands(&dump.create)));
    out = tidy(out);
    out.push_str(&format!(
        "\nSELECT pg_catalog.set_config('search_path', pg_catalog.current_setting({SAVED:?}), true);\n"
    ).replace('"', "'"));
    out
}

/// Where the up file keeps the session's search_path while the dump runs with an empty one.
const SAVED: &str = "pgx.baseline_search_path";

/// The down file: a refusal, or the dump's DROP statements.
pub fn down_sql(dump: &SchemaDump, reversible: bool) -> String {
    if !reversible {
        return format!(
            "-- pgx {}: baseline (down): refuses, because reverting the baseline would drop the\n\
             -- whole schema of the database. Write the baseline with `pgx baseline --reversible`\n\
             -- for a down migration that drops what the dump created.\n\
             {IRREVERSIBLE}\n\
             DO $pgx$\nBEGIN\n    RAISE EXCEPTION 'the baseline migration cannot be reverted: it is the schema pgx found in the database, and reverting it would drop all of it'\n        USING HINT = 'write it with pgx baseline --reversible to allow this';\nEND\n$pgx$;\n",
            env!("CARGO_PKG_VERSION")
        );
    }
    let mut out = format!(
        "-- pgx {}: baseline (down): drops every object the baseline created, in dependency order\n\
         -- (pg_restore --clean). Schema public itself stays, as it was there before.\n",
        env!("CARGO_PKG_VERSION")
    );
    for stmt in drop_statements(&without_meta_commands(&dump.clean)) {
        out.push('\n');
        out.push_str(stmt);
        out.push('\n');
    }
    tidy(out)
}

/// Lines starting with a backslash are psql meta-commands (pg_dump 15.14 and later start and
/// end with `\restrict KEY`), which neither pgx nor sqlx can send to the server.
fn without_meta_commands(script: &str) -> String {
    script
        .split_inclusive('\n')
        .filter(|l| !l.starts_with('\\'))
        .collect()
}

/// `SET x = y` becomes `SET LOCAL x = y`, and `set_config(..., false)` becomes
/// `set_config(..., true)`: pg_dump's settings for the restoring session, kept to this
/// migration's transaction.
fn localise_settings(script: &str) -> String {
    let mut out = String::with_capacity(script.len() + 256);
    let mut copied = 0;
    for stmt in sql::split_statements(script) {
        let text = stmt.text;
        let upper = text.to_ascii_uppercase();
        let replacement = if upper.starts_with("SET ")
            && !upper.starts_with("SET LOCAL ")
            && !upper.starts_with("SET SESSION ")
        {
            Some(format!("SET LOCAL {}", &text[4..]))
        } else if upper.starts_with("SELECT PG_CATALOG.SET_CONFIG(") && text.ends_with(", false);")
        {
            Some(format!(
                "{}, true);",
                &text[..text.len() - ", false);".len()]
            ))
        } else {
            None
        };
        if let Some(r) = replacement {
            out.push_str(&script[copied..stmt.offset]);
            out.push_str(&r);
            copied = stmt.offset + text.len();
        }
    }
    out.push_str(&script[copied..]);
    out
}

/// The DROP statements a `--clean` script starts with (after its settings), but never schema
/// public's: it holds `_sqlx_migrations`, and every database has it.
fn drop_statements(clean: &str) -> Vec<&str> {
    sql::split_statements(clean)
        .into_iter()
        .map(|s| s.text)
        .skip_while(|t| is_setting(t))
        .take_while(|t| is_drop(t))
        .filter(|t| !t.eq_ignore_ascii_case("DROP SCHEMA IF EXISTS public;"))
        .collect()
}

fn is_setting(text: &str) -> bool {
    let upper = text.to_ascii_uppercase();
    upper.starts_with("SET ") || upper.starts_with("SELECT PG_CATALOG.SET_CONFIG(")
}

/// `DROP ...`, or `ALTER ... IF EXISTS ... DROP ...` (constraints and column defaults).
fn is_drop(text: &str) -> bool {
    let upper = text.to_ascii_uppercase();
    upper.starts_with("DROP ") || (upper.starts_with("ALTER ") && upper.contains(" DROP "))
}

fn tidy(mut text: String) -> String {
    let trimmed = text.trim_end().len();
    text.truncate(trimmed);
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATE: &str = "--\n-- PostgreSQL database dump\n--\n\n\\restrict abc\n\nSET statement_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\nSET row_security = off;\n\nCREATE FUNCTION public.f() RETURNS text LANGUAGE sql AS $$SELECT 'SET x = 1;'$$;\n\nSET default_tablespace = '';\n\nCREATE TABLE public.t (id integer);\n\n\\unrestrict abc\n";
    const CLEAN: &str = "\\restrict abc\nSET statement_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\nALTER TABLE IF EXISTS ONLY public.t DROP CONSTRAINT IF EXISTS t_pkey;\nDROP TABLE IF EXISTS public.t;\nDROP SCHEMA IF EXISTS public;\nDROP SCHEMA IF EXISTS app;\nCREATE SCHEMA app;\nCREATE TABLE public.t (id integer);\n\\unrestrict abc\n";

    fn dump() -> SchemaDump {
        SchemaDump {
            create: CREATE.into(),
            clean: CLEAN.into(),
            dumped_by: "pg_dump (PostgreSQL) 15.20".into(),
        }
    }

    #[test]
    fn settings_end_with_the_migration_and_meta_commands_go() {
        let up = up_sql(&dump());
        assert!(
            !up.contains("\\restrict") && !up.contains("\\unrestrict"),
            "{up}"
        );
        assert!(up.contains("\nSET LOCAL statement_timeout = 0;\n"), "{up}");
        assert!(up.contains("set_config('search_path', '', true);"), "{up}");
        assert!(up.contains("\nSET LOCAL row_security = off;\n"), "{up}");
        assert!(
            up.contains("\nSET LOCAL default_tablespace = '';\n"),
            "{up}"
        );
        assert!(
            up.contains("$$SELECT 'SET x = 1;'$$"),
            "function bodies untouched: {up}"
        );
        assert!(up.contains("CREATE TABLE public.t"), "{up}");
        assert!(!up.contains("\nSET statement_timeout"), "{up}");
        let saved = up.find("set_config('pgx.baseline_search_path'").unwrap();
        let emptied = up.find("set_config('search_path', '', true)").unwrap();
        let restored = up
            .find("set_config('search_path', pg_catalog.current_setting('pgx.baseline_search_path'), true)")
            .unwrap();
        assert!(saved < emptied && emptied < restored, "{up}");
        assert!(up.trim_end().ends_with("true);"), "restored last: {up}");
    }

    #[test]
    fn the_down_refuses_or_drops_what_the_dump_created() {
        let refusing = down_sql(&dump(), false);
        assert!(refusing.contains(IRREVERSIBLE), "{refusing}");
        assert!(refusing.contains("RAISE EXCEPTION"), "{refusing}");
        let dropping = down_sql(&dump(), true);
        assert!(!dropping.contains(IRREVERSIBLE));
        assert!(
            dropping.contains("DROP TABLE IF EXISTS public.t;"),
            "{dropping}"
        );
        assert!(
            dropping.contains("DROP CONSTRAINT IF EXISTS t_pkey;"),
            "{dropping}"
        );
        assert!(
            dropping.contains("DROP SCHEMA IF EXISTS app;"),
            "{dropping}"
        );
        assert!(
            !dropping.contains("DROP SCHEMA IF EXISTS public;"),
            "{dropping}"
        );
        assert!(!dropping.contains("CREATE"), "{dropping}");
        assert!(!dropping.contains("SET "), "{dropping}");
    }
}
