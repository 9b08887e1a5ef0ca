//! Finding PostgreSQL's programs (`initdb`, `pg_ctl`, `postgres`, `psql`, `pg_dump`) on this machine, the
//! way a person would look for them: `PGX_PG_BINDIR`, `PATH`, `pg_config --bindir`, then the
//! places distributions and Homebrew put them.

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::dev_error;
use crate::error::Result;

/// A directory holding `initdb`, `pg_ctl` and `postgres`, and its major version.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub dir: PathBuf,
    pub version: String,
    pub major: u32,
}

const INSTALL_HINT: &str = "install PostgreSQL (Debian/Ubuntu: apt install postgresql; Fedora/RHEL: dnf install postgresql-server; macOS: brew install postgresql@17), set PGX_PG_BINDIR to the folder holding initdb, or set DATABASE_URL to a server you already have";

pub(super) fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
}

pub(super) fn path_dirs() -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default()
}

/// Directories by descending version number (`.../15/bin` before `.../9.6/bin`).
fn versioned(pattern_parent: &str, prefix: &str, suffix: &str) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(pattern_parent) else {
        return Vec::new();
    };
    let mut found: Vec<(Vec<u32>, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let version = name.strip_prefix(prefix)?;
            let key: Vec<u32> = version
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            Some((key, e.path().join(suffix)))
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0));
    found.into_iter().map(|(_, p)| p).collect()
}

/// Where PostgreSQL's server programs may be, in order of preference.
fn candidate_dirs() -> Vec<PathBuf> {
    if let Some(dir) = std::env::var_os("PGX_PG_BINDIR").filter(|d| !d.is_empty()) {
        return vec![PathBuf::from(dir)];
    }
    let mut dirs = path_dirs();
    if let Ok(out) = Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
    {
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !dir.is_empty() {
            dirs.push(PathBuf::from(dir));
        }
    }
    dirs.extend(versioned("/usr/lib/postgresql", "", "bin")); // Debian, Ubuntu
    dirs.extend(versioned("/usr", "pgsql-", "bin")); // PGDG RPMs
    for prefix in [
        "/opt/homebrew/opt",
        "/usr/local/opt",
        "/home/linuxbrew/.linuxbrew/opt",
    ] {
        dirs.extend(versioned(prefix, "postgresql@", "bin"));
        dirs.push(Path::new(prefix).join("postgresql/bin"));
    }
    dirs.push("/Applications/Postgres.app/Contents/Versions/latest/bin".into());
    dirs.extend(
        [
            "/opt/homebrew/bin",
            "/usr/local/bin",
            "/usr/local/pgsql/bin",
        ]
        .into_iter()
        .map(PathBuf::from),
    );
    dirs
}

/// `pg_ctl --version` → ("15.13", 15).
fn version_of(dir: &Path) -> Option<(String, u32)> {
    tool_version(&dir.join("pg_ctl"))
}

/// `<tool> --version` → ("15.13", 15).
fn tool_version(tool: &Path) -> Option<(String, u32)> {
    let out = Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    parse_version(&String::from_utf8_lossy(&out.stdout))
}

pub(super) fn parse_version(text: &str) -> Option<(String, u32)> {
    let version = text
        .split("(PostgreSQL)")
        .nth(1)?
        .split_whitespace()
        .next()?;
    let major = version
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    Some((version.to_string(), major))
}

/// A PostgreSQL client program (`pg_dump`, `pg_restore`) able to work with a server of major
/// version `server_major`: of that version if installed, else the newest newer one (pg_dump
/// refuses servers newer than itself), looked for where the dev cluster looks for `initdb`.
pub fn find_client_tool(name: &str, server_major: u32) -> Result<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    for dir in candidate_dirs() {
        let path = dir.join(name);
        if !is_executable(&path) {
            continue;
        }
        let real = fs::canonicalize(&path).unwrap_or(path);
        if seen.contains(&real) {
            continue;
        }
        seen.push(real.clone());
        if let Some((_, major)) = tool_version(&real) {
            found.push((major, real));
        }
    }
    if let Some((_, p)) = found.iter().find(|(m, _)| *m == server_major) {
        return Ok(p.clone());
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    match found.first() {
        Some((m, p)) if *m > server_major => Ok(p.clone()),
        Some(_) => Err(dev_error(format!(
            "{name} {server_major} or newer is needed for a PostgreSQL {server_major} server, and only older ones are installed ({}): install PostgreSQL {server_major}'s client programs (Debian/Ubuntu: apt install postgresql-client-{server_major}), or set PGX_PG_BINDIR to their folder",
            found
                .iter()
                .map(|(m, p)| format!("{m} in {}", p.display()))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        None => Err(dev_error(format!(
            "{name} not found in PATH, `pg_config --bindir`, /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin or Homebrew: install PostgreSQL's client programs (Debian/Ubuntu: apt install postgresql-client; macOS: brew install libpq), or set PGX_PG_BINDIR to their folder"
        ))),
    }
}

/// The first candidate holding initdb, pg_ctl and postgres (of major version `want` if given).
pub fn find_binaries(want: Option<u32>) -> Result<Binaries> {
    find_binaries_in(candidate_dirs(), want)
}

pub(super) fn find_binaries_in(candidates: Vec<PathBuf>, want: Option<u32>) -> Result<Binaries> {
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut found: Vec<String> = Vec::new();
    for dir in candidates {
        if !["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|p| is_executable(&dir.join(p)))
        {
            continue;
        }
        // Symlinks in /usr/local/bin and the like lead to the real folder.
        let real = fs::canonicalize(dir.join("pg_ctl"))
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or(dir);
        if seen.contains(&real) {
            continue;
        }
        seen.push(real.clone());
        let Some((version, major)) = version_of(&real) else {
            continue;
        };
        if want.is_none_or(|w| w == major) {
            return Ok(Binaries {
                dir: real,
                version,
                major,
            });
        }
        found.push(format!("{version} in {}", real.display()));
    }
    match want {
        Some(w) if !found.is_empty() => Err(dev_error(format!(
            "the dev cluster was created by PostgreSQL {w}, and only other versions are installed ({}): install PostgreSQL {w} (or set PGX_PG_BINDIR to its bin folder), or delete the cluster and its databases with `pgx dev reset --yes`",
            found.join(", ")
        ))),
        _ => Err(dev_error(format!(
            "no PostgreSQL server programs (initdb, pg_ctl, postgres{}) found in PATH, `pg_config --bindir`, /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin or Homebrew: {INSTALL_HINT}",
            want.map(|w| format!(", version {w}")).unwrap_or_default()
        ))),
    }
}
