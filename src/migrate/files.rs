//! Migration files on disk, named and resolved exactly as sqlx does:
//! `<VERSION>_<DESCRIPTION>.up.sql` / `.down.sql` (or `.sql` for irreversible ones), the
//! description being the rest of the name with `_` read as spaces, the checksum SHA-384 over the
//! file's raw bytes, and `-- no-transaction` at the very start opting out of the transaction.
//! (Just over 500 lines, most of them tests of naming, versions and atomic writes.)

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};
use sha2::{Digest, Sha384};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `V_desc.sql`: cannot be reverted.
    Simple,
    Up,
    Down,
}

impl Kind {
    fn from_rest(rest: &str) -> Kind {
        if rest.ends_with(".up.sql") {
            Kind::Up
        } else if rest.ends_with(".down.sql") {
            Kind::Down
        } else {
            Kind::Simple
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Kind::Simple => ".sql",
            Kind::Up => ".up.sql",
            Kind::Down => ".down.sql",
        }
    }
}

/// One `.sql` file.
#[derive(Debug, Clone)]
pub struct MigrationFile {
    pub version: i64,
    pub description: String,
    pub kind: Kind,
    pub path: PathBuf,
    pub sql: String,
    pub checksum: Vec<u8>,
    pub no_transaction: bool,
}

/// A version with its up (or simple) file and, when reversible, its down file.
#[derive(Debug, Clone)]
pub struct Migration {
    pub version: i64,
    pub description: String,
    pub up: MigrationFile,
    pub down: Option<MigrationFile>,
}

pub fn checksum(sql: &str) -> Vec<u8> {
    Sha384::digest(sql.as_bytes()).to_vec()
}

/// Parses a file name the way sqlx's resolver does. `Ok(None)` means "not a migration" (sqlx
/// ignores such files); an unparsable version is an error, as in sqlx.
pub fn parse_name(path: &Path) -> Result<Option<(i64, String, Kind)>> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some((version, rest)) = name.split_once('_') else {
        return Ok(None);
    };
    if !rest.ends_with(".sql") {
        return Ok(None);
    }
    let version: i64 = version.parse().map_err(|_| Error::MigrationName {
        path: path.to_path_buf(),
        reason: format!("`{version}` is not an integer version (expected e.g. 20250101000000_create_users.up.sql)"),
    })?;
    let kind = Kind::from_rest(rest);
    let description = rest.trim_end_matches(kind.suffix()).replace('_', " ");
    Ok(Some((version, description, kind)))
}

/// Reads every migration in `dir`. A missing directory has no migrations.
pub fn scan(dir: &Path) -> Result<Vec<Migration>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read migrations directory", dir, e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read migrations directory", dir, e))?;
        let path = entry.path();
        let meta = fs::metadata(&path).map_err(|e| Error::io("read", &path, e))?;
        if !meta.is_file() {
            continue;
        }
        let Some((version, description, kind)) = parse_name(&path)? else {
            continue;
        };
        let sql = fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
        files.push(MigrationFile {
            version,
            description,
            kind,
            checksum: checksum(&sql),
            no_transaction: sql.starts_with("-- no-transaction"),
            path,
            sql,
        });
    }
    files.sort_by_key(|f| (f.version, f.kind));

    let mut out: Vec<Migration> = Vec::new();
    for file in files {
        let same = out.last_mut().filter(|m| m.version == file.version);
        match (same, file.kind) {
            (None, Kind::Simple | Kind::Up) => out.push(Migration {
                version: file.version,
                description: file.description.clone(),
                up: file,
                down: None,
            }),
            (Some(m), Kind::Down) if m.up.kind == Kind::Up && m.down.is_none() => {
                m.down = Some(file);
            }
            (None, Kind::Down) => {
                return Err(Error::MigrationSet {
                    message: format!(
                        "{} has no matching .up.sql file with version {}",
                        file.path.display(),
                        file.version
                    ),
                });
            }
            (Some(m), _) => {
                let other = m.down.as_ref().unwrap_or(&m.up);
                return Err(Error::MigrationSet {
                    message: format!(
                        "{} and {} share version {}; each migration needs its own version",
                        other.path.display(),
                        file.path.display(),
                        file.version
                    ),
                });
            }
        }
    }
    Ok(out)
}

/// The description part of a file name: snake case, safe in any file system.
pub fn file_description(text: &str) -> Result<String> {
    use heck::ToSnakeCase;
    let mut d = text.to_snake_case();
    d.retain(|c| c.is_alphanumeric() || c == '_');
    // Keep names comfortably below the usual 255-byte file name limit.
    while d.len() > 120 {
        d.pop();
    }
    let d = d.trim_matches('_').to_string();
    if d.is_empty() {
        return Err(Error::Usage(format!(
            "migration description {text:?} has no letters or digits to name a file with"
        )));
    }
    Ok(d)
}

fn timestamp_version(t: DateTime<Utc>) -> i64 {
    t.format("%Y%m%d%H%M%S")
        .to_string()
        .parse()
        .expect("a formatted timestamp is a number")
}

/// The version for a new migration: the current UTC time, or one step past the newest existing
/// version when that is not older (several runs in one second, or a clock behind the files).
/// A timestamp version steps by one second so it stays a valid timestamp.
pub fn next_version(existing_max: Option<i64>, now: DateTime<Utc>) -> i64 {
    let candidate = timestamp_version(now);
    match existing_max {
        Some(max) if max >= candidate => {
            match NaiveDateTime::parse_from_str(&max.to_string(), "%Y%m%d%H%M%S") {
                Ok(t) => timestamp_version((t + chrono::Duration::seconds(1)).and_utc()),
                Err(_) => max + 1,
            }
        }
        _ => candidate,
    }
}

/// The version one step before `version`: a second earlier for a timestamp version, else one
/// less.
pub fn previous_version(version: i64) -> i64 {
    match NaiveDateTime::parse_from_str(&version.to_string(), "%Y%m%d%H%M%S") {
        Ok(t) => timestamp_version((t - chrono::Duration::seconds(1)).and_utc()),
        Err(_) => version - 1,
    }
}

/// The versions of migration-named files in `dir` (whatever their kind).
fn versions(dir: &Path) -> Result<Vec<i64>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read migrations directory", dir, e)),
    };
    Ok(entries
        .flatten()
        .filter_map(|entry| parse_name(&entry.path()).ok().flatten().map(|(v, _, _)| v))
        .collect())
}

/// The highest version among migration-named files in `dir` (whatever their kind), so a new
/// migration always sorts last.
pub fn max_version(dir: &Path) -> Result<Option<i64>> {
    Ok(versions(dir)?.into_iter().max())
}

/// Where new migrations go in the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Place {
    /// After every existing migration, at the current time (the usual case).
    #[default]
    Last,
    /// Just below this version (one second apart for timestamp versions), and above every
    /// existing version below it: a baseline written into a project that has migrations.
    Before(i64),
}

/// The versions `count` new migrations get in `dir`, in order.
pub fn plan_versions(dir: &Path, count: usize, place: Place) -> Result<Vec<i64>> {
    let existing = versions(dir)?;
    match place {
        Place::Last => {
            let mut out = Vec::with_capacity(count);
            let mut v = existing.iter().copied().max();
            for _ in 0..count {
                let next = next_version(v, Utc::now());
                out.push(next);
                v = Some(next);
            }
            Ok(out)
        }
        Place::Before(before) => {
            let floor = existing.iter().copied().filter(|&v| v < before).max();
            let mut out = Vec::with_capacity(count);
            let mut v = before;
            for _ in 0..count {
                v = previous_version(v);
                out.push(v);
            }
            out.reverse();
            let lowest = out.first().copied().unwrap_or(before);
            if lowest <= 0 || floor.is_some_and(|f| lowest <= f) {
                return Err(Error::Usage(format!(
                    "no room for {count} migration{} just before version {before}{}: choose another --before",
                    if count == 1 { "" } else { "s" },
                    floor
                        .map(|f| format!(" (version {f} is right below it)"))
                        .unwrap_or_default()
                )));
            }
            Ok(out)
        }
    }
}

/// The two paths written for one migration.
#[derive(Debug, Clone)]
pub struct Written {
    pub version: i64,
    pub up: PathBuf,
    pub down: PathBuf,
}

/// One migration to write: its description and both halves.
#[derive(Debug, Clone, Copy)]
pub struct NewPair<'a> {
    pub description: &'a str,
    pub up: &'a str,
    pub down: &'a str,
}

/// Writes `<version>_<description>.up.sql` and `.down.sql` into `dir`.
pub fn write_pair(dir: &Path, description: &str, up: &str, down: &str) -> Result<Written> {
    let mut written = write_set(
        dir,
        &[NewPair {
            description,
            up,
            down,
        }],
        Place::Last,
    )?;
    Ok(written.remove(0))
}

/// Writes several migrations at consecutive, increasing versions, in the given order: all of
/// them, or none.
///
/// Every file is written to a hidden temporary file first and then linked into place without
/// overwriting, so a file appears whole or not at all, a failure leaves no file behind and an
/// existing file is never replaced. Concurrent pgx processes take turns through a lock on the
/// directory itself (nothing left behind in it), so two of them never choose the same version
/// under different descriptions, which the links alone would not notice; a version taken by
/// another tool meanwhile makes this one move past it (when the migrations go last; placed
/// before a version, a taken version is an error).
pub fn write_set(dir: &Path, pairs: &[NewPair<'_>], place: Place) -> Result<Vec<Written>> {
    fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    let _turn = lock_dir(dir)?;
    let write_temp = |content: &str| -> Result<tempfile::NamedTempFile> {
        // Readable by all (0666 less the umask), as sqlx-cli and editors write files: a
        // migration is source code, and a temporary file's 0600 would make it private.
        let mut tmp = tempfile::Builder::new()
            .prefix(".pgx-new-")
            .suffix(".tmp")
            .permissions(fs::Permissions::from_mode(0o666))
            .tempfile_in(dir)
            .map_err(|e| Error::io("create a file in", dir, e))?;
        tmp.write_all(content.as_bytes())
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| Error::io("write", tmp.path().to_path_buf(), e))?;
        Ok(tmp)
    };
    let mut planned = plan_versions(dir, pairs.len(), place)?;
    'attempt: for _ in 0..100 {
        let mut written: Vec<Written> = Vec::with_capacity(pairs.len());
        let mut placed: Vec<PathBuf> = Vec::new();
        for (pair, &v) in pairs.iter().zip(&planned) {
            let up_path = dir.join(format!("{v}_{}.up.sql", pair.description));
            let down_path = dir.join(format!("{v}_{}.down.sql", pair.description));
            for (content, path) in [(pair.up, &up_path), (pair.down, &down_path)] {
                match write_temp(content)?.persist_noclobber(path) {
                    Ok(_) => placed.push(path.clone()),
                    Err(e) => {
                        // Never leave part of a set behind.
                        for p in &placed {
                            let _ = fs::remove_file(p);
                        }
                        if e.error.kind() == std::io::ErrorKind::AlreadyExists
                            && place == Place::Last
                        {
                            planned = plan_versions(dir, pairs.len(), place)?;
                            continue 'attempt;
                        }
                        return Err(Error::io("write", path.clone(), e.error));
                    }
                }
            }
            written.push(Written {
                version: v,
                up: up_path,
                down: down_path,
            });
        }
        return Ok(written);
    }
    Err(Error::Usage(format!(
        "could not find a free migration version in {}",
        dir.display()
    )))
}

/// An exclusive flock(2) on the directory, released when the returned handle is dropped (or the
/// process dies).
fn lock_dir(dir: &Path) -> Result<fs::File> {
    let handle = fs::File::open(dir).map_err(|e| Error::io("open directory", dir, e))?;
    loop {
        match rustix::fs::flock(&handle, rustix::fs::FlockOperation::LockExclusive) {
            Ok(()) => return Ok(handle),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::io("lock directory", dir, e.into())),
        }
    }
}

/// The migration-named up (or simple) files of `dir` as `(version, path, contents)`, sorted by
/// version; files sqlx would not read are skipped rather than refused (writing a new migration
/// must not need a tidy folder).
pub fn up_files(dir: &Path) -> Result<Vec<(i64, PathBuf, String)>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read migrations directory", dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(Some((version, _, kind))) = parse_name(&path) else {
            continue;
        };
        if kind == Kind::Down || !path.is_file() {
            continue;
        }
        let sql = fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
        out.push((version, path, sql));
    }
    out.sort_by_key(|(v, _, _)| *v);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names_parse_like_sqlx() {
        let p = |s: &str| parse_name(Path::new(s)).unwrap();
        assert_eq!(
            p("20240101000000_add_users.up.sql"),
            Some((20240101000000, "add users".into(), Kind::Up))
        );
        assert_eq!(p("3_x.down.sql"), Some((3, "x".into(), Kind::Down)));
        assert_eq!(p("1_init.sql"), Some((1, "init".into(), Kind::Simple)));
        assert_eq!(p("README.md"), None);
        assert_eq!(p("notes_on_things.txt"), None);
        assert!(parse_name(Path::new("v1_bad.up.sql")).is_err());
    }

    #[test]
    fn versions_strictly_increase() {
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 8, 30, 59).unwrap();
        assert_eq!(next_version(None, now), 20261124083059);
        assert_eq!(next_version(Some(20261124083059), now), 20261124083100);
        assert_eq!(next_version(Some(20261124235959), now), 20261125000000);
        assert_eq!(next_version(Some(20200101000000), now), 20261124083059);
        // Not a timestamp: plain increment still sorts after it.
        assert_eq!(next_version(Some(99999999999999), now), 100000000000000);
    }

    #[test]
    fn descriptions_are_file_safe() {
        assert_eq!(
            file_description("audit Order Items").unwrap(),
            "audit_order_items"
        );
        assert_eq!(
            file_description("tenant orders; drop table x").unwrap(),
            "tenant_orders_drop_table_x"
        );
        assert_eq!(file_description("../../etc/passwd").unwrap(), "etc_passwd");
        assert!(file_description("!!!").is_err());
    }

    #[test]
    fn pairs_and_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        let a = write_pair(dir.path(), "a", "select 1;", "select 2;").unwrap();
        let b = write_pair(dir.path(), "b", "select 1;", "select 2;").unwrap();
        assert!(b.version > a.version);
        let set = scan(dir.path()).unwrap();
        assert_eq!(set.len(), 2);
        assert!(set.iter().all(|m| m.down.is_some()));
        // No temporary files left over.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 4);

        fs::write(dir.path().join(format!("{}_dup.sql", a.version)), "").unwrap();
        assert!(
            scan(dir.path())
                .unwrap_err()
                .to_string()
                .contains("share version")
        );
    }

    #[test]
    fn versions_before_another_fit_below_it_or_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n, place| plan_versions(dir.path(), n, place);
        assert_eq!(
            p(2, Place::Before(20240101000000)).unwrap(),
            [20231231235958, 20231231235959]
        );
        assert_eq!(p(1, Place::Before(10)).unwrap(), [9]);
        fs::write(dir.path().join("20231231235959_x.up.sql"), "").unwrap();
        let err = p(1, Place::Before(20240101000000)).unwrap_err().to_string();
        assert!(err.contains("no room"), "{err}");
        assert!(p(1, Place::Before(1)).is_err());
        let w = write_set(
            dir.path(),
            &[NewPair {
                description: "b",
                up: "",
                down: "",
            }],
            Place::Before(20231231235959),
        )
        .unwrap();
        assert_eq!(w[0].version, 20231231235958);
        // sqlx-cli creates files with File::create: 0666 less the umask.
        let probe = dir.path().join("probe");
        fs::File::create(&probe).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&w[0].up), mode(&probe));
        assert_eq!(mode(&w[0].down), mode(&probe));
    }

    #[test]
    fn versions_skip_past_stray_files_and_overwrite_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let taken = next_version(None, Utc::now()) + 5;
        // A stray down file at a future version (a clock behind the files, say).
        fs::write(dir.path().join(format!("{taken}_c.down.sql")), "keep me").unwrap();
        let w = write_pair(dir.path(), "c", "up", "down").unwrap();
        assert!(w.version > taken);
        assert_eq!(
            fs::read_to_string(dir.path().join(format!("{taken}_c.down.sql"))).unwrap(),
            "keep me"
        );
        assert!(!dir.path().join(format!("{taken}_c.up.sql")).exists());
        assert_eq!(fs::read_to_string(&w.up).unwrap(), "up");
        assert_eq!(fs::read_to_string(&w.down).unwrap(), "down");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            3,
            "no temporary files left"
        );
    }
}
