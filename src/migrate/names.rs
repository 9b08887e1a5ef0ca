//! The migration files as sqlx will read them: names it would ignore or reject, an up without
//! its down (or the reverse), versions shared by several files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::check::Problem;
use super::files::{self, Kind};
use crate::error::{Error, Result};

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Names sqlx would ignore or reject, migrations without a down, downs without an up, and
/// versions shared by several files.
pub fn problems(dir: &Path) -> Result<Vec<Problem>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read migrations directory", dir, e)),
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("sql")))
        .collect();
    paths.sort();
    let mut problems = Vec::new();
    let mut by_version: BTreeMap<i64, Vec<(PathBuf, String, Kind)>> = BTreeMap::new();
    for path in paths {
        let name = file_name(&path);
        if !name.ends_with(".sql") {
            problems.push(Problem::file(
                &path,
                format!(
                    "{name}: the extension must be .sql in lower case, or sqlx ignores the file"
                ),
            ));
            continue;
        }
        match files::parse_name(&path) {
            Err(e) => problems.push(Problem::file(&path, e.to_string())),
            Ok(None) => problems.push(Problem::file(
                &path,
                format!("{name} is not named VERSION_DESCRIPTION.up.sql or .down.sql, so pgx and sqlx ignore it"),
            )),
            Ok(Some((version, description, kind))) => {
                if description.trim().is_empty() {
                    problems.push(Problem::file(
                        &path,
                        format!("{name} has no description after its version"),
                    ));
                }
                by_version
                    .entry(version)
                    .or_default()
                    .push((path, description, kind));
            }
        }
    }
    for (version, files) in by_version {
        let of = |k: Kind| files.iter().filter(|f| f.2 == k).collect::<Vec<_>>();
        let (simple, up, down) = (of(Kind::Simple), of(Kind::Up), of(Kind::Down));
        if simple.len() + up.len() > 1 || down.len() > 1 {
            let names: Vec<String> = files.iter().map(|f| file_name(&f.0)).collect();
            problems.push(Problem::file(
                &files[0].0,
                format!(
                    "{} share version {version}; each migration needs its own version",
                    names.join(", ")
                ),
            ));
            continue;
        }
        match (simple.first(), up.first(), down.first()) {
            (Some(s), _, _) => problems.push(Problem::file(
                &s.0,
                format!(
                    "{} cannot be reverted: rename it {version}_{}.up.sql and add {version}_{}.down.sql",
                    file_name(&s.0),
                    s.1.replace(' ', "_"),
                    s.1.replace(' ', "_")
                ),
            )),
            (None, Some(u), None) => problems.push(Problem::file(
                &u.0,
                format!(
                    "{} has no down migration: add {}",
                    file_name(&u.0),
                    file_name(&u.0).replace(".up.sql", ".down.sql")
                ),
            )),
            (None, None, Some(d)) => problems.push(Problem::file(
                &d.0,
                format!("{} has no up migration with version {version}", file_name(&d.0)),
            )),
            (None, Some(u), Some(d)) if u.1 != d.1 => problems.push(Problem::file(
                &d.0,
                format!(
                    "{} and {} share a version but not a description; name them alike",
                    file_name(&u.0),
                    file_name(&d.0)
                ),
            )),
            _ => {}
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_problems_name_each_file() {
        let dir = tempfile::tempdir().unwrap();
        let write = |n: &str| std::fs::write(dir.path().join(n), "SELECT 1;\n").unwrap();
        write("20240101000000_ok.up.sql");
        write("20240101000000_ok.down.sql");
        write("20240101000001_no_down.up.sql");
        write("20240101000002_only_down.down.sql");
        write("20240101000003_simple.sql");
        write("20240101000004_a.up.sql");
        write("20240101000004_b.down.sql");
        write("seed.sql");
        write("v1_bad.up.sql");
        std::fs::write(dir.path().join("README.md"), "not sql").unwrap();
        let problems = problems(dir.path()).unwrap();
        let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(problems.len(), 6, "{messages:#?}");
        let has = |needle: &str| {
            assert!(
                messages.iter().any(|m| m.contains(needle)),
                "{needle}: {messages:#?}"
            );
        };
        has(
            "20240101000001_no_down.up.sql has no down migration: add 20240101000001_no_down.down.sql",
        );
        has("20240101000002_only_down.down.sql has no up migration");
        has("20240101000003_simple.sql cannot be reverted");
        has("share a version but not a description");
        has("seed.sql is not named VERSION_DESCRIPTION");
        has("`v1` is not an integer version");
    }
}
