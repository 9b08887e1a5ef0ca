//! Rendered SQL compared with checked-in files (`tests/it/snapshots/<case>/{up,down}.sql`), so a
//! template change shows up in review as a diff of the SQL it produces. `PGX_BLESS=1` rewrites
//! them. These complement, never replace, the tests that apply the SQL.

use std::path::PathBuf;

use pgx::pattern::Catalog;
use pgx::pattern::{Renderer, render_pattern};

/// Renders `pattern` for `table` with `sets` and compares both halves with `case`'s files.
pub fn check(case: &str, pattern: &str, schema: &str, table: Option<&str>, sets: &[(&str, &str)]) {
    let catalog = Catalog::builtin().unwrap();
    let p = catalog.get(pattern).unwrap();
    let sets: Vec<(String, String)> = sets
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    let resolved = p.resolve(&sets).unwrap();
    let rendered = render_pattern(
        &Renderer::new(&catalog).unwrap(),
        p,
        schema,
        table,
        &resolved,
    )
    .unwrap();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/snapshots")
        .join(case);
    for (name, actual) in [("up.sql", &rendered.up()), ("down.sql", &rendered.down())] {
        // The header names pgx's version; keep snapshots stable across releases.
        let actual = actual.replace(env!("CARGO_PKG_VERSION"), "VERSION");
        let path = dir.join(name);
        if std::env::var_os("PGX_BLESS").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!("missing snapshot {}; run with PGX_BLESS=1", path.display())
        });
        assert_eq!(
            actual,
            expected,
            "rendering changed: {} (PGX_BLESS=1 to accept)",
            path.display()
        );
    }
}

#[test]
fn timestamps_default() {
    check("timestamps", "timestamps", "public", Some("orders"), &[]);
}

#[test]
fn timestamps_hostile_names() {
    check(
        "timestamps_hostile",
        "timestamps",
        "Sales Dept",
        Some("orders; drop table x"),
        &[
            ("created_column", "select"),
            ("updated_column", "\"quoted\""),
        ],
    );
}
