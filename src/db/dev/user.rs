//! Running the server as another user: PostgreSQL refuses to run as root, so as root pgx runs
//! the dev cluster's programs as an unprivileged system user, who then owns what pgx creates for
//! it.

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{Cluster, dev_error};
use crate::error::{Error, Result};

/// An unprivileged system user the server runs as when pgx runs as root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

impl Cluster {
    /// The data directory's owner when it exists and is not root, else `PGX_DEV_USER`, else
    /// `postgres` (`_postgres` on macOS).
    pub(super) fn server_user(&self) -> Result<ServerUser> {
        if let Some(meta) = fs::metadata(self.data_dir()).ok().filter(|m| m.uid() != 0) {
            return Ok(user_by_uid(meta.uid()).unwrap_or_else(|| ServerUser {
                name: meta.uid().to_string(),
                uid: meta.uid(),
                gid: meta.gid(),
                home: PathBuf::from("/"),
            }));
        }
        let wanted = std::env::var("PGX_DEV_USER").ok().filter(|s| !s.is_empty());
        let names: Vec<String> = match &wanted {
            Some(name) => vec![name.clone()],
            None => vec!["postgres".into(), "_postgres".into()],
        };
        for name in &names {
            if let Some(user) = user_by_name(name) {
                if user.uid == 0 {
                    return Err(dev_error(format!(
                        "PostgreSQL refuses to run as root, and user {name} is root too: set PGX_DEV_USER to an unprivileged user"
                    )));
                }
                return Ok(user);
            }
        }
        Err(dev_error(format!(
            "PostgreSQL refuses to run as root, and there is no unprivileged system user {} to run the dev cluster as: create one (useradd --system --create-home --home-dir /var/lib/postgresql postgres), name another with PGX_DEV_USER, run pgx as an ordinary user, or set DATABASE_URL to a server you already have",
            names.join(" or ")
        )))
    }

    /// Hands a path pgx created to the server's user.
    pub(super) fn give(&self, path: &Path) -> Result<()> {
        match &self.user {
            Some(u) => std::os::unix::fs::chown(path, Some(u.uid), Some(u.gid))
                .map_err(|e| Error::io("change the owner of", path, e)),
            None => Ok(()),
        }
    }
}

/// The user the dev clusters' servers run as by default when pgx runs as root (`PGX_DEV_USER`,
/// else `postgres`); `None` for an ordinary user, whose servers run as themselves.
pub fn default_server_user() -> Option<ServerUser> {
    if effective_uid() != 0 {
        return None;
    }
    match std::env::var("PGX_DEV_USER").ok().filter(|s| !s.is_empty()) {
        Some(name) => user_by_name(&name),
        None => user_by_name("postgres").or_else(|| user_by_name("_postgres")),
    }
}

/// The process's effective user id.
pub fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn passwd_entries() -> Vec<ServerUser> {
    let text = Command::new("getent")
        .arg("passwd")
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .or_else(|| fs::read_to_string("/etc/passwd").ok())
        .unwrap_or_default();
    text.lines().filter_map(parse_passwd_line).collect()
}

pub(super) fn parse_passwd_line(line: &str) -> Option<ServerUser> {
    let f: Vec<&str> = line.split(':').collect();
    if f.len() < 7 || line.starts_with('#') {
        return None;
    }
    Some(ServerUser {
        name: f[0].to_string(),
        uid: f[2].parse().ok()?,
        gid: f[3].parse().ok()?,
        home: PathBuf::from(f[5]),
    })
}

fn user_by_name(name: &str) -> Option<ServerUser> {
    passwd_entries().into_iter().find(|u| u.name == name)
}

fn user_by_uid(uid: u32) -> Option<ServerUser> {
    passwd_entries().into_iter().find(|u| u.uid == uid)
}

/// The first directory on the way to `path` (itself included) that `user` may not enter, by
/// its mode bits; the server runs without supplementary groups, so only the primary one counts.
pub fn unsearchable_ancestor(user: &ServerUser, path: &Path) -> Option<PathBuf> {
    let mut ancestors: Vec<&Path> = path.ancestors().collect();
    ancestors.reverse();
    for dir in ancestors {
        let Ok(meta) = fs::metadata(dir) else {
            return Some(dir.to_path_buf());
        };
        let bit = if meta.uid() == user.uid {
            0o100
        } else if meta.gid() == user.gid {
            0o010
        } else {
            0o001
        };
        if meta.mode() & bit == 0 {
            return Some(dir.to_path_buf());
        }
    }
    None
}
