//! What `up` and `down` will do: the history checked against the files, the migrations to run
//! in order, and the script a dry run prints.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use super::files::{Migration, MigrationFile};
use super::history::Applied;
use crate::error::{Error, Result};
use crate::sql;

pub(super) fn script_entry(out: &mut String, file: &MigrationFile, record: &str) {
    let _ = write!(out, "\n-- {}\n", file.path.display());
    let body = file.sql.trim_end();
    if file.no_transaction {
        let _ = write!(out, "{body}\n{record}\n");
    } else {
        let _ = write!(out, "BEGIN;\n{body}\n{record}\nCOMMIT;\n");
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

pub(super) fn quote_text(text: &str) -> String {
    // Descriptions come from file names, which cannot hold NUL.
    sql::quote_literal(text).unwrap_or_else(|_| "''".to_string())
}

/// How far `down` goes.
#[derive(Debug, Clone, Copy)]
pub enum Down {
    Steps(usize),
    /// Revert every applied migration newer than this version (0: all of them).
    Target(i64),
}

pub(super) fn check_target(
    migrations: &[Migration],
    dir: &Path,
    target: Option<i64>,
) -> Result<()> {
    match target {
        Some(v) if !migrations.iter().any(|m| m.version == v) => Err(Error::UnknownVersion {
            version: v,
            dir: dir.display().to_string(),
        }),
        _ => Ok(()),
    }
}

/// How a missing file may be got past: `up` takes `--ignore-missing`, `down` and `redo` do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IfMissing {
    Ignore,
    SuggestFlag,
    Refuse,
}

/// Refuses to go on from a history that does not match the files: a failed row, a file that
/// changed since it ran, or a row whose file is gone.
fn validate<'m>(
    migrations: &'m [Migration],
    applied: &[Applied],
    dir: &Path,
    if_missing: IfMissing,
) -> Result<BTreeMap<i64, &'m Migration>> {
    let by_version: BTreeMap<i64, &Migration> = migrations.iter().map(|m| (m.version, m)).collect();
    for a in applied {
        if !a.success {
            return Err(Error::Dirty {
                version: a.version,
                description: a.description.clone(),
            });
        }
        match by_version.get(&a.version) {
            None if if_missing == IfMissing::Ignore => {}
            None => {
                return Err(Error::Missing {
                    version: a.version,
                    description: a.description.clone(),
                    dir: dir.display().to_string(),
                    fix: if if_missing == IfMissing::SuggestFlag {
                        "restore the file or pass --ignore-missing"
                    } else {
                        "restore the file (reverting needs the file of every applied migration)"
                    },
                });
            }
            Some(m) if m.up.checksum != a.checksum => {
                return Err(Error::Modified {
                    version: a.version,
                    file: m.up.path.display().to_string(),
                });
            }
            Some(_) => {}
        }
    }
    Ok(by_version)
}

pub(super) fn plan_up<'m>(
    migrations: &'m [Migration],
    applied: &[Applied],
    dir: &Path,
    target: Option<i64>,
    ignore_missing: bool,
) -> Result<Vec<&'m Migration>> {
    let if_missing = if ignore_missing {
        IfMissing::Ignore
    } else {
        IfMissing::SuggestFlag
    };
    validate(migrations, applied, dir, if_missing)?;
    let done: BTreeSet<i64> = applied.iter().map(|a| a.version).collect();
    Ok(migrations
        .iter()
        .filter(|m| !done.contains(&m.version))
        .filter(|m| target.is_none_or(|t| m.version <= t))
        .collect())
}

pub(super) fn plan_down<'m>(
    migrations: &'m [Migration],
    applied: &[Applied],
    dir: &Path,
    how: Down,
) -> Result<Vec<(&'m Migration, &'m MigrationFile)>> {
    let by_version = validate(migrations, applied, dir, IfMissing::Refuse)?;
    let newest_first = applied.iter().rev();
    let chosen: Vec<&Applied> = match how {
        Down::Steps(n) => newest_first.take(n).collect(),
        Down::Target(t) => {
            if t != 0 && !by_version.contains_key(&t) {
                return Err(Error::UnknownVersion {
                    version: t,
                    dir: dir.display().to_string(),
                });
            }
            newest_first.filter(|a| a.version > t).collect()
        }
    };
    chosen
        .into_iter()
        .map(|a| {
            let m = by_version[&a.version];
            let down = m.down.as_ref().ok_or_else(|| Error::NoDownMigration {
                version: m.version,
                expected: m
                    .up
                    .path
                    .with_file_name(
                        m.up.path
                            .file_name()
                            .and_then(|n| n.to_str())
                            .map(|n| n.replace(".up.sql", ".down.sql"))
                            .unwrap_or_default(),
                    )
                    .display()
                    .to_string(),
            })?;
            Ok((m, down))
        })
        .collect()
}
