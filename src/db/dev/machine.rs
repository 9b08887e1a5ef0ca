//! Every pgx dev cluster on this machine, for `pgx dev list` and `pgx dev prune`: data left in
//! the server user's home after its project was deleted, and servers still running for projects
//! that are gone, must be visible and collectable.
//!
//! Clusters are found three ways, and merged by data directory:
//!
//! - a registry: one file per cluster, naming its `.pgx` folder, in
//!   `$XDG_STATE_HOME/pgx/clusters` (else `~/.local/state/pgx/clusters`), written when a cluster
//!   is created or started and removed by `pgx dev reset`;
//! - the folders pgx keeps clusters in when the server's user cannot enter the project
//!   (`<home>/pgx-dev/<name>/`, each with a `project` file naming its `.pgx` folder);
//! - running servers (Linux: `/proc`): a postmaster whose data directory is a `.pgx/data` or a
//!   `pgx-dev/<name>/data`, including one whose data directory was deleted under it.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::user::ServerUser;
use super::{STATE_DIR, dev_error, short_socket_dir};
use crate::error::{Error, Result};

/// The file, in a server-user home folder, naming the `.pgx` folder the cluster belongs to.
pub(super) const PROJECT_FILE: &str = "project";

/// One dev cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    /// The project folder (holding `.pgx`), when known.
    pub project: Option<PathBuf>,
    /// Whether the project's `.pgx` folder still exists; a cluster whose project is gone is
    /// what `pgx dev prune` removes.
    pub project_exists: bool,
    pub data_dir: PathBuf,
    /// Bytes on disk; `None` when the data directory is gone (a server still running on it).
    pub size: Option<u64>,
    pub running: bool,
    pub pid: Option<u32>,
}

impl Found {
    /// Its project is known and gone.
    pub fn orphaned(&self) -> bool {
        self.project.is_some() && !self.project_exists
    }
}

/// The registry folder, if this user has a home to keep it in.
fn registry_dir() -> Option<PathBuf> {
    if let Some(state) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(state).join("pgx/clusters"));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|h| PathBuf::from(h).join(".local/state/pgx/clusters"))
}

fn entry_name(state: &Path) -> String {
    super::path_hash(state)
}

/// Notes the cluster of `state` in the registry; best effort (listing is a convenience, never a
/// reason for a migration to fail).
pub(super) fn register(state: &Path) {
    let Some(dir) = registry_dir() else { return };
    let entry = dir.join(entry_name(state));
    if entry.is_file() {
        return;
    }
    let _ = fs::create_dir_all(&dir);
    let _ = fs::write(entry, format!("{}\n", state.display()));
}

pub(super) fn unregister(state: &Path) {
    if let Some(dir) = registry_dir() {
        let _ = fs::remove_file(dir.join(entry_name(state)));
    }
}

/// Every cluster found, sorted by project path.
pub fn find_all(server_user: Option<&ServerUser>) -> Vec<Found> {
    let mut by_data: Vec<(PathBuf, Option<PathBuf>)> = Vec::new();
    let mut add = |data: PathBuf, state: Option<PathBuf>| match by_data
        .iter_mut()
        .find(|(d, _)| *d == data)
    {
        Some((_, s)) => {
            if s.is_none() {
                *s = state;
            }
        }
        None => by_data.push((data, state)),
    };
    for state in registered() {
        let link = state.join("data");
        let data = fs::read_link(&link).map(|t| state.join(t)).unwrap_or(link);
        add(data, Some(state));
    }
    for home in kept_homes(server_user) {
        let state = read_project_file(&home);
        add(home.join("data"), state);
    }
    let running = running_postmasters();
    for (_, data) in &running {
        let state = state_of(data);
        add(data.clone(), state);
    }
    let mut found: Vec<Found> = by_data
        .into_iter()
        .filter_map(|(data, state)| {
            // postmaster.pid can name a live process that is another cluster's server (a data
            // folder copied with its pid file): where /proc tells, trust only /proc.
            let pid = running
                .iter()
                .find(|(_, d)| *d == data)
                .map(|(p, _)| *p)
                .or_else(|| postmaster_pid(&data).filter(|&p| !has_proc() && alive(p)));
            let exists = data.join("PG_VERSION").is_file();
            if !exists && pid.is_none() {
                // Nothing on disk and nothing running: a registry entry of a deleted project.
                if let Some(s) = &state {
                    unregister(s);
                }
                return None;
            }
            let project_exists = state.as_ref().is_some_and(|s| {
                s.is_dir() && fs::canonicalize(s.join("data")).ok() == fs::canonicalize(&data).ok()
            });
            Some(Found {
                project: state
                    .as_ref()
                    .and_then(|s| s.parent().map(Path::to_path_buf)),
                project_exists,
                size: exists.then(|| dir_size(&data)),
                running: pid.is_some(),
                pid,
                data_dir: data,
            })
        })
        .collect();
    found.sort_by(|a, b| (&a.project, &a.data_dir).cmp(&(&b.project, &b.data_dir)));
    found
}

fn registered() -> Vec<PathBuf> {
    let Some(dir) = registry_dir() else {
        return Vec::new();
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| fs::read_to_string(e.path()).ok())
        .map(|s| PathBuf::from(s.trim_end_matches('\n')))
        .filter(|p| p.is_absolute())
        .collect()
}

/// `<home>/pgx-dev/*` folders of the server's user (and of the current user, whose clusters
/// they are when pgx runs as that user).
fn kept_homes(server_user: Option<&ServerUser>) -> Vec<PathBuf> {
    let mut homes: Vec<PathBuf> = server_user.map(|u| u.home.clone()).into_iter().collect();
    if let Some(h) = std::env::var_os("HOME") {
        homes.push(PathBuf::from(h));
    }
    homes
        .iter()
        .filter_map(|h| fs::read_dir(h.join("pgx-dev")).ok())
        .flat_map(|rd| rd.flatten().map(|e| e.path()))
        .filter(|p| p.join("data").is_dir())
        .collect()
}

fn read_project_file(home: &Path) -> Option<PathBuf> {
    fs::read_to_string(home.join(PROJECT_FILE))
        .ok()
        .map(|s| PathBuf::from(s.trim_end_matches('\n')))
        .filter(|p| p.is_absolute())
}

/// The `.pgx` folder a data directory belongs to: its parent for `<project>/.pgx/data`, the
/// `project` file next to it in a server-user home.
fn state_of(data: &Path) -> Option<PathBuf> {
    let parent = data.parent()?;
    if parent.file_name().is_some_and(|n| n == STATE_DIR) {
        return Some(parent.to_path_buf());
    }
    read_project_file(parent)
}

fn is_pgx_data_dir(data: &Path) -> bool {
    let Some(parent) = data.parent() else {
        return false;
    };
    data.file_name().is_some_and(|n| n == "data")
        && (parent.file_name().is_some_and(|n| n == STATE_DIR)
            || parent
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|n| n == "pgx-dev"))
}

fn has_proc() -> bool {
    Path::new("/proc/self/cmdline").is_file()
}

/// Running postmasters of pgx clusters: `(pid, data directory)`.
fn running_postmasters() -> Vec<(u32, PathBuf)> {
    let Ok(procs) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = fs::read(p.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        let is_postgres = args
            .first()
            .is_some_and(|a| a.ends_with(b"/postgres") || *a == b"postgres");
        if !is_postgres {
            continue;
        }
        let Some(data) = args
            .iter()
            .position(|a| *a == b"-D")
            .and_then(|i| args.get(i + 1))
            .map(|d| PathBuf::from(String::from_utf8_lossy(d).into_owned()))
        else {
            continue;
        };
        if is_pgx_data_dir(&data) {
            out.push((pid, data));
        }
    }
    out
}

fn postmaster_pid(data: &Path) -> Option<u32> {
    fs::read_to_string(data.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

fn alive(pid: u32) -> bool {
    i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .is_some_and(|p| rustix::process::test_kill_process(p).is_ok())
}

/// Bytes of the files under `dir` (links not followed).
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// Stops a cluster whose project is gone (fast shutdown: sessions are ended) and deletes what
/// is left of it: a server-user home folder, its socket folder under /tmp, its registry entry.
pub fn prune(found: &Found) -> Result<()> {
    if !found.orphaned() {
        return Err(dev_error(format!(
            "refusing to prune the dev cluster in {}: its project is not known to be gone",
            found.data_dir.display()
        )));
    }
    if let Some(pid) = found.pid {
        stop_by_signal(pid)?;
    }
    let state = found.project.as_ref().map(|p| p.join(STATE_DIR));
    // Only a folder pgx made for a cluster is deleted: `<home>/pgx-dev/<name>` with its data.
    if let Some(home) = found.data_dir.parent()
        && home
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|n| n == "pgx-dev")
        && home.is_dir()
    {
        fs::remove_dir_all(home).map_err(|e| Error::io("remove", home, e))?;
    }
    if let Some(state) = &state {
        let short = short_socket_dir(state);
        if fs::symlink_metadata(&short).is_ok_and(|m| m.is_dir()) {
            let _ = fs::remove_dir_all(&short);
        }
        unregister(state);
    }
    Ok(())
}

/// SIGINT is PostgreSQL's fast shutdown; waits for the postmaster to exit.
fn stop_by_signal(pid: u32) -> Result<()> {
    let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return Ok(());
    };
    match rustix::process::kill_process(p, rustix::process::Signal::INT) {
        Ok(()) => {}
        Err(rustix::io::Errno::SRCH) => return Ok(()),
        Err(e) => {
            return Err(dev_error(format!(
                "cannot stop the dev cluster's server (pid {pid}): {}",
                std::io::Error::from(e)
            )));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while alive(pid) {
        if Instant::now() > deadline {
            return Err(dev_error(format!(
                "the dev cluster's server (pid {pid}) did not stop within 60 s"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgx_data_directories_are_recognised() {
        assert!(is_pgx_data_dir(Path::new("/home/me/app/.pgx/data")));
        assert!(is_pgx_data_dir(Path::new(
            "/var/lib/postgresql/pgx-dev/app-0123/data"
        )));
        assert!(!is_pgx_data_dir(Path::new("/var/lib/postgresql/15/main")));
        assert!(!is_pgx_data_dir(Path::new("/srv/data")));
        assert_eq!(
            state_of(Path::new("/home/me/app/.pgx/data")),
            Some(PathBuf::from("/home/me/app/.pgx"))
        );
    }
}
