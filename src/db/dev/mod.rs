//! The project's own PostgreSQL cluster, kept in `.pgx/`: used whenever no database URL is
//! configured, so pgx works on a machine with PostgreSQL installed but no server set up.
//!
//! The cluster listens on a Unix socket only (no TCP port), in a directory only the server's
//! user may enter, and trusts local connections: whoever can reach the socket already is that
//! user (or root). It is created with the installed `initdb`, started on demand with `pg_ctl`,
//! and reused. Creation and start happen under a file lock, so several pgx processes started at
//! once start it once.
//!
//! PostgreSQL refuses to run as root. When pgx runs as root the server runs as an unprivileged
//! system user (the data directory's owner if it exists, else `postgres`), which then owns the
//! data and socket directories. When that user cannot reach the project (a project under a
//! `0700` home directory), the data lives in that user's home instead, and `.pgx/data` is a link
//! to it.

//!
//! By concern: `binaries` finds PostgreSQL's programs, `server` creates, starts and stops the
//! cluster, `user` runs them as the server's user when pgx is root, `machine` finds every
//! cluster on the machine (`pgx dev list`, `prune`); this file knows where the cluster's files
//! are and what state it is in.

mod binaries;
pub mod machine;
mod role;
mod server;
mod user;

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

pub use binaries::{Binaries, find_binaries, find_client_tool};
pub use role::RoleOutcome;
pub use user::{ServerUser, default_server_user, effective_uid, unsearchable_ancestor};

use crate::db::url::{DbUrl, UrlSource, percent_encode};
use crate::error::{Error, Result};

/// The folder, at the project's root, that holds the cluster (and is in `.gitignore`).
pub const STATE_DIR: &str = ".pgx";
/// The superuser `initdb` creates, and the user of the URL.
pub const SUPERUSER: &str = "postgres";
/// The database commands use.
pub const DATABASE: &str = "postgres";
/// Only names the socket file: the server listens on no TCP port.
const PORT: u16 = 5432;
/// `sun_path` holds 108 bytes on Linux and 104 on macOS and the BSDs, the final NUL included.
const MAX_SOCKET_PATH: usize = 103;
const SOCKET_FILE: &str = ".s.PGSQL.5432";

/// What `ensure_running` had to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    AlreadyRunning,
    Started,
    Created,
}

impl Started {
    pub fn label(self) -> &'static str {
        match self {
            Started::AlreadyRunning => "already running",
            Started::Started => "started it",
            Started::Created => "created and started it",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub created: bool,
    pub running: bool,
    pub pid: Option<u32>,
    pub version: Option<String>,
    pub data_dir: PathBuf,
    pub socket_dir: PathBuf,
    pub log: PathBuf,
    /// The URL as `Display` shows it (the cluster has no password anyway).
    pub url: String,
    pub server_user: Option<String>,
}

/// The cluster of one `.pgx` folder.
#[derive(Debug, Clone)]
pub struct Cluster {
    state: PathBuf,
    user: Option<ServerUser>,
}

pub(crate) fn dev_error(message: impl Into<String>) -> Error {
    Error::DevCluster {
        message: message.into(),
    }
}

impl Cluster {
    /// The cluster of the project at `root`.
    pub fn for_project(root: &Path) -> Result<Cluster> {
        Cluster::at(&root.join(STATE_DIR))
    }

    /// The cluster kept in `state` (a `.pgx` folder, or any folder: the test suite keeps one
    /// under `target/`).
    pub fn at(state: &Path) -> Result<Cluster> {
        let state = std::path::absolute(state).map_err(|e| Error::io("resolve", state, e))?;
        let mut cluster = Cluster { state, user: None };
        if effective_uid() == 0 {
            cluster.user = Some(cluster.server_user()?);
        }
        Ok(cluster)
    }

    /// The folder holding the cluster's state (`.pgx`).
    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    /// The user the server runs as, when pgx runs as root.
    pub fn server_user_name(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.name.as_str())
    }

    fn link(&self) -> PathBuf {
        self.state.join("data")
    }

    /// `.pgx/data`, or where it links to.
    pub fn data_dir(&self) -> PathBuf {
        let link = self.link();
        match fs::read_link(&link) {
            Ok(target) => self.state.join(target),
            Err(_) => link,
        }
    }

    /// The folder around the data directory: `.pgx`, or the server user's folder for it.
    fn home(&self) -> PathBuf {
        let data = self.data_dir();
        data.parent()
            .map_or_else(|| self.state.clone(), Path::to_path_buf)
    }

    pub fn log_file(&self) -> PathBuf {
        self.home().join("server.log")
    }

    /// `run` next to the data directory, unless the socket's path would be too long for a
    /// Unix socket; then a short folder under /tmp named after the cluster.
    pub fn socket_dir(&self) -> PathBuf {
        let inside = self.home().join("run");
        if socket_path_fits(&inside) {
            inside
        } else {
            short_socket_dir(&self.state)
        }
    }

    fn initialised(&self) -> bool {
        self.data_dir().join("PG_VERSION").is_file()
    }

    fn data_major(&self) -> Option<u32> {
        fs::read_to_string(self.data_dir().join("PG_VERSION"))
            .ok()
            .and_then(|v| v.trim().parse().ok())
    }

    /// The running server's pid, port and socket directory, from `postmaster.pid`.
    fn postmaster(&self) -> Option<(u32, u16, PathBuf)> {
        let text = fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        let lines: Vec<&str> = text.lines().collect();
        let pid = lines.first()?.trim().parse().ok()?;
        let port = lines.get(3)?.trim().parse().ok()?;
        let dir = lines.get(4).map(|l| l.trim()).filter(|l| !l.is_empty())?;
        Some((pid, port, PathBuf::from(dir)))
    }

    /// The URL of the cluster's database: where the running server listens, else where it
    /// will.
    pub fn url(&self) -> DbUrl {
        match self.postmaster() {
            Some((_, port, dir)) => socket_url(&dir, port, DATABASE),
            None => socket_url(&self.socket_dir(), PORT, DATABASE),
        }
    }

    /// `.pgx` as the user would type it from the current directory.
    pub fn describe(&self) -> String {
        let cwd = std::env::current_dir().unwrap_or_default();
        match self.state.strip_prefix(&cwd) {
            Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
            _ => self.state.display().to_string(),
        }
    }

    /// The installed binaries to use: those of the cluster's major version once it exists.
    pub fn binaries(&self) -> Result<Binaries> {
        find_binaries(self.data_major())
    }

    pub fn status(&self) -> Result<Status> {
        let created = self.initialised();
        let running = if created {
            self.is_running(&self.binaries()?)?
        } else {
            false
        };
        let postmaster = running.then(|| self.postmaster()).flatten();
        Ok(Status {
            created,
            running,
            pid: postmaster.as_ref().map(|p| p.0),
            version: fs::read_to_string(self.data_dir().join("PG_VERSION"))
                .ok()
                .map(|v| v.trim().to_string()),
            data_dir: self.data_dir(),
            socket_dir: postmaster.map_or_else(|| self.socket_dir(), |p| p.2),
            log: self.log_file(),
            url: self.url().to_string(),
            server_user: self.user.as_ref().map(|u| u.name.clone()),
        })
    }
}

/// The cluster's URL: the socket directory percent-encoded as the host, as both libpq and sqlx
/// read it (a URL with an empty host could not have its user or database changed).
pub fn socket_url(dir: &Path, port: u16, database: &str) -> DbUrl {
    DbUrl::from_source(
        format!(
            "postgres://{SUPERUSER}@{}:{port}/{}",
            percent_encode(&dir.to_string_lossy()),
            percent_encode(database)
        ),
        UrlSource::DevCluster,
    )
}

fn socket_path_fits(dir: &Path) -> bool {
    dir.to_str()
        .is_some_and(|d| d.len() + 1 + SOCKET_FILE.len() <= MAX_SOCKET_PATH)
}

fn path_hash(path: &Path) -> String {
    let digest = Sha256::digest(path.as_os_str().as_encoded_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// A socket directory whose path is short whatever the project's path.
pub fn short_socket_dir(state: &Path) -> PathBuf {
    PathBuf::from(format!("/tmp/pgx-{}", path_hash(state)))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::binaries::{find_binaries_in, parse_version};
    use super::server::{conf_string, list_element};
    use super::user::parse_passwd_line;
    use super::*;

    #[test]
    fn urls_put_the_socket_directory_in_the_host() {
        let url = socket_url(Path::new("/tmp/a b/.pgx/run"), 5432, "postgres");
        assert_eq!(
            url.expose(),
            "postgres://postgres@%2Ftmp%2Fa%20b%2F.pgx%2Frun:5432/postgres"
        );
        let opts = crate::db::options(&url).unwrap();
        assert_eq!(opts.get_socket(), Some(&PathBuf::from("/tmp/a b/.pgx/run")));
        assert_eq!(opts.get_port(), 5432);
        assert_eq!(opts.get_username(), "postgres");
        assert_eq!(opts.get_database(), Some("postgres"));
        // The test harness swaps the database and the user of this URL.
        let other = url.with_database("x").unwrap();
        let opts = crate::db::options(&other).unwrap();
        assert_eq!(opts.get_database(), Some("x"));
        assert_eq!(opts.get_socket(), Some(&PathBuf::from("/tmp/a b/.pgx/run")));
    }

    #[test]
    fn long_paths_get_a_short_socket_directory() {
        let long = PathBuf::from(format!("/tmp/{}/.pgx", "d".repeat(100)));
        assert!(!socket_path_fits(&long.join("run")));
        let short = short_socket_dir(&long);
        assert!(socket_path_fits(&short), "{}", short.display());
        assert_eq!(short, short_socket_dir(&long), "stable for one project");
        assert_ne!(short, short_socket_dir(Path::new("/tmp/other/.pgx")));
        assert!(socket_path_fits(Path::new("/home/me/project/.pgx/run")));
    }

    #[test]
    fn conf_strings_keep_odd_paths_whole() {
        assert_eq!(
            conf_string(&list_element("/p/it's, \"x\"\\y")),
            r#"'"/p/it''s, ""x""\\y"'"#
        );
    }

    #[test]
    fn versions_and_passwd_lines_parse() {
        assert_eq!(
            parse_version("pg_ctl (PostgreSQL) 15.13 (Debian 15.13-0+deb12u1)\n"),
            Some(("15.13".into(), 15))
        );
        assert_eq!(
            parse_version("pg_ctl (PostgreSQL) 17beta1"),
            Some(("17beta1".into(), 17))
        );
        assert_eq!(parse_version("bash: pg_ctl: not found"), None);
        let u = parse_passwd_line(
            "postgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash",
        )
        .unwrap();
        assert_eq!((u.uid, u.gid), (101, 104));
        assert_eq!(u.home, PathBuf::from("/var/lib/postgresql"));
        assert_eq!(parse_passwd_line("garbage"), None);
    }

    #[test]
    fn missing_binaries_name_what_to_install() {
        let empty = tempfile::tempdir().unwrap();
        let err = find_binaries_in(vec![empty.path().to_path_buf()], None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("apt install postgresql"), "{err}");
        assert!(err.contains("brew install postgresql"), "{err}");
        assert!(err.contains("DATABASE_URL"), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn unsearchable_directories_are_found() {
        let top = tempfile::tempdir().unwrap();
        let inner = top.path().join("a/b");
        fs::create_dir_all(&inner).unwrap();
        fs::set_permissions(top.path().join("a"), fs::Permissions::from_mode(0o700)).unwrap();
        let nobody = ServerUser {
            name: "nobody-test".into(),
            uid: 65_534,
            gid: 65_534,
            home: "/".into(),
        };
        assert_eq!(
            unsearchable_ancestor(&nobody, &inner),
            Some(top.path().join("a"))
        );
        fs::set_permissions(top.path().join("a"), fs::Permissions::from_mode(0o711)).unwrap();
        // tempdir() is 0700 itself.
        fs::set_permissions(top.path(), fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(unsearchable_ancestor(&nobody, &inner), None);
    }
}
