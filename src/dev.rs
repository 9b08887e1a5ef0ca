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

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::cli;
use crate::commands::{json_out, out};
use crate::config::{DbUrl, Project};
use crate::error::{Error, Result, one_line};

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
/// How long a pgx process waits for another one that is creating or starting the cluster.
const LOCK_WAIT: Duration = Duration::from_secs(300);
/// Seconds `pg_ctl` waits for the server to start or stop.
const PG_CTL_WAIT: &str = "120";

/// Settings written to `pgx.conf` (included by `postgresql.conf`) before every start, so a
/// moved project gets its new socket directory. `ALTER SYSTEM` overrides them.
///
/// fsync and full_page_writes are off: a dev cluster's data is disposable (`pgx dev reset
/// --yes` starts afresh), and migrations and test suites should not wait for the disk. Commits
/// still reach the kernel, so a crash of the server loses nothing committed; a crash of the
/// operating system may corrupt the cluster.
const SETTINGS: &str = "listen_addresses = ''
unix_socket_permissions = 0700
port = 5432
max_connections = 100
shared_buffers = '32MB'
fsync = off
full_page_writes = off
";

/// An unprivileged system user the server runs as when pgx runs as root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

/// A directory holding `initdb`, `pg_ctl` and `postgres`, and its major version.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub dir: PathBuf,
    pub version: String,
    pub major: u32,
}

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

fn dev_error(message: impl Into<String>) -> Error {
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

    /// The data directory's owner when it exists and is not root, else `PGX_DEV_USER`, else
    /// `postgres` (`_postgres` on macOS).
    fn server_user(&self) -> Result<ServerUser> {
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

    /// A PostgreSQL program, run as the server's user when pgx runs as root.
    fn tool(&self, bin: &Binaries, name: &str) -> Command {
        let mut cmd = Command::new(bin.dir.join(name));
        // The server user may not be allowed into the current directory.
        cmd.current_dir("/")
            .stdin(Stdio::null())
            .env_remove("PGDATA")
            .env_remove("PGPORT")
            .env_remove("PGHOST");
        if let Some(u) = &self.user {
            // std drops root's supplementary groups before setuid.
            cmd.uid(u.uid)
                .gid(u.gid)
                .env("HOME", &u.home)
                .env("USER", &u.name)
                .env("LOGNAME", &u.name);
        }
        cmd
    }

    fn run_tool(&self, mut cmd: Command, what: &str) -> Result<Output> {
        cmd.output()
            .map_err(|e| dev_error(format!("cannot run {what}: {e}")))
    }

    /// Hands a path pgx created to the server's user.
    fn give(&self, path: &Path) -> Result<()> {
        match &self.user {
            Some(u) => std::os::unix::fs::chown(path, Some(u.uid), Some(u.gid))
                .map_err(|e| Error::io("change the owner of", path, e)),
            None => Ok(()),
        }
    }

    /// Holds `.pgx/lock` until dropped, waiting for another pgx process that holds it.
    fn lock(&self) -> Result<fs::File> {
        fs::create_dir_all(&self.state)
            .map_err(|e| Error::io("create directory", &self.state, e))?;
        let path = self.state.join("lock");
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .or_else(|_| fs::File::open(&path))
            .map_err(|e| Error::io("open", &path, e))?;
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            // Released by the kernel when the file is closed, even if pgx is killed.
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(file),
                Err(rustix::io::Errno::WOULDBLOCK | rustix::io::Errno::INTR)
                    if Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    return Err(dev_error(format!(
                        "another pgx process has held {} for {} s while creating or starting the dev cluster; is it stuck?",
                        path.display(),
                        LOCK_WAIT.as_secs()
                    )));
                }
                Err(e) => return Err(Error::io("lock", &path, e.into())),
            }
        }
    }

    fn is_running(&self, bin: &Binaries) -> Result<bool> {
        if !self.data_dir().join("postmaster.pid").exists() {
            return Ok(false);
        }
        let mut cmd = self.tool(bin, "pg_ctl");
        cmd.arg("status").arg("-D").arg(self.data_dir());
        let out = self.run_tool(cmd, "pg_ctl status")?;
        // 0: running; 3: not running; 4: no usable data directory.
        match out.status.code() {
            Some(0) => Ok(true),
            Some(3) => Ok(false),
            _ => Err(dev_error(format!(
                "pg_ctl status on {} failed: {}",
                self.data_dir().display(),
                output_text(&out)
            ))),
        }
    }

    /// Creates the cluster if needed and starts it if it is not running.
    pub fn ensure_running(&self) -> Result<Started> {
        let _lock = self.lock()?;
        let bin = self.binaries()?;
        let created = if self.initialised() {
            false
        } else {
            self.create(&bin)?;
            true
        };
        if self.is_running(&bin)? {
            return Ok(Started::AlreadyRunning);
        }
        self.start(&bin)?;
        Ok(if created {
            Started::Created
        } else {
            Started::Started
        })
    }

    /// Where a new cluster's data goes: `.pgx/data`, unless the server user cannot reach it.
    fn new_data_dir(&self) -> Result<PathBuf> {
        let Some(user) = &self.user else {
            return Ok(self.link());
        };
        let Some(blocked) = unsearchable_ancestor(user, &self.state) else {
            return Ok(self.link());
        };
        if unsearchable_ancestor(user, &user.home).is_some() || !user.home.is_dir() {
            return Err(dev_error(format!(
                "the dev cluster's server runs as user {} (PostgreSQL refuses root), which cannot enter {} to reach {}, and has no home directory to keep the cluster in instead: move the project somewhere {} can reach, or let it in (chmod o+x {})",
                user.name,
                blocked.display(),
                self.state.display(),
                user.name,
                blocked.display()
            )));
        }
        let parent = user.home.join("pgx-dev");
        let name: String = self
            .state
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let home = parent.join(format!("{name}-{}", &path_hash(&self.state)[..12]));
        for dir in [&parent, &home] {
            match fs::DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => self.give(dir)?,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io("create directory", dir, e)),
            }
        }
        Ok(home.join("data"))
    }

    fn create(&self, bin: &Binaries) -> Result<()> {
        // A `.pgx/data` without PG_VERSION is what an interrupted creation left.
        let link = self.link();
        if let Ok(meta) = fs::symlink_metadata(&link) {
            let gone = if meta.is_symlink() {
                fs::remove_file(&link)
            } else {
                fs::remove_dir_all(&link)
            };
            gone.map_err(|e| Error::io("remove the unfinished cluster", &link, e))?;
        }
        let data = self.new_data_dir()?;
        let staging = data.with_file_name("data.init");
        let mut last = String::new();
        for locale in ["C.UTF-8", "C"] {
            remove_dir_if_exists(&staging)?;
            if data != link {
                remove_dir_if_exists(&data)?;
            }
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&staging)
                .map_err(|e| Error::io("create directory", &staging, e))?;
            self.give(&staging)?;
            let mut cmd = self.tool(bin, "initdb");
            cmd.arg("-D")
                .arg(&staging)
                .args(["-U", SUPERUSER, "-E", "UTF8", "--no-sync"])
                .args(["--auth-local=trust", "--auth-host=reject"])
                .arg(format!("--locale={locale}"));
            let out = self.run_tool(cmd, "initdb")?;
            if out.status.success() {
                last.clear();
                break;
            }
            last = output_text(&out);
        }
        if !last.is_empty() {
            let _ = fs::remove_dir_all(&staging);
            return Err(dev_error(format!(
                "initdb failed to create the dev cluster in {}: {last}",
                staging.display()
            )));
        }
        let conf = staging.join("postgresql.conf");
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .map_err(|e| Error::io("open", &conf, e))?;
        file.write_all(
            b"\n# pgx dev cluster: socket-only settings, rewritten before every start\ninclude 'pgx.conf'\n",
        )
        .map_err(|e| Error::io("write", &conf, e))?;
        // Renamed into place once complete, so a cluster with PG_VERSION is always whole.
        fs::rename(&staging, &data).map_err(|e| Error::io("rename", &staging, e))?;
        if data != link {
            std::os::unix::fs::symlink(&data, &link)
                .map_err(|e| Error::io("create link", &link, e))?;
        }
        Ok(())
    }

    /// The socket directory, made (or checked to be) the server user's alone.
    fn prepare_socket_dir(&self, dir: &Path) -> Result<()> {
        let owner = match &self.user {
            Some(u) => u.uid,
            None => effective_uid(),
        };
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => self.give(dir)?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("create directory", dir, e)),
        }
        let meta = fs::symlink_metadata(dir).map_err(|e| Error::io("read", dir, e))?;
        if !meta.is_dir() || meta.uid() != owner {
            return Err(dev_error(format!(
                "refusing to put the dev cluster's socket in {}: it is not a directory owned by uid {owner}; remove it",
                dir.display()
            )));
        }
        if meta.mode() & 0o077 != 0 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io("restrict the permissions of", dir, e))?;
        }
        Ok(())
    }

    fn start(&self, bin: &Binaries) -> Result<()> {
        let data = self.data_dir();
        let socket = self.socket_dir();
        self.prepare_socket_dir(&socket)?;
        let conf = data.join("pgx.conf");
        fs::write(
            &conf,
            format!(
                "# Written by pgx before every start of the dev cluster; override with ALTER SYSTEM.\n{SETTINGS}unix_socket_directories = {}\n",
                conf_string(&list_element(&socket.to_string_lossy()))
            ),
        )
        .map_err(|e| Error::io("write", &conf, e))?;
        self.give(&conf)?;
        let log = self.log_file();
        fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&log)
            .map_err(|e| Error::io("create", &log, e))?;
        self.give(&log)?;
        let mut cmd = self.tool(bin, "pg_ctl");
        cmd.arg("start")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", PG_CTL_WAIT, "-s"]);
        let out = self.run_tool(cmd, "pg_ctl start")?;
        if out.status.success() {
            return Ok(());
        }
        Err(dev_error(format!(
            "cannot start the dev cluster in {}: {}; see {}",
            data.display(),
            log_tail(&log).unwrap_or_else(|| output_text(&out)),
            log.display()
        )))
    }

    /// Stops the server (fast: open sessions are ended). `Ok(false)`: it was not running.
    pub fn stop(&self) -> Result<bool> {
        if !self.initialised() {
            return Ok(false);
        }
        let _lock = self.lock()?;
        let bin = self.binaries()?;
        if !self.is_running(&bin)? {
            return Ok(false);
        }
        let mut cmd = self.tool(&bin, "pg_ctl");
        cmd.arg("stop").arg("-D").arg(self.data_dir()).args([
            "-m",
            "fast",
            "-w",
            "-t",
            PG_CTL_WAIT,
            "-s",
        ]);
        let out = self.run_tool(cmd, "pg_ctl stop")?;
        if !out.status.success() {
            return Err(dev_error(format!(
                "cannot stop the dev cluster in {}: {}",
                self.data_dir().display(),
                output_text(&out)
            )));
        }
        Ok(true)
    }

    /// Stops the server and deletes the cluster with every database in it. `Ok(false)`: there
    /// was none.
    pub fn reset(&self) -> Result<bool> {
        if !self.state.is_dir() {
            return Ok(false);
        }
        let existed = self.initialised();
        if existed {
            self.stop()?;
        }
        let _lock = self.lock()?;
        let link = self.link();
        if let Ok(meta) = fs::symlink_metadata(&link) {
            if meta.is_symlink() {
                let data = self.data_dir();
                // Only a folder pgx made (<home>/pgx-dev/<name>/data) is removed through the
                // link: a hand-edited link must not make pgx delete something else.
                let home = data.parent().filter(|h| {
                    data.file_name().is_some_and(|n| n == "data")
                        && h.parent()
                            .and_then(Path::file_name)
                            .is_some_and(|n| n == "pgx-dev")
                });
                if let Some(home) = home {
                    remove_dir_if_exists(home)?;
                }
                fs::remove_file(&link).map_err(|e| Error::io("remove", &link, e))?;
            } else {
                remove_dir_if_exists(&link)?;
            }
        }
        remove_dir_if_exists(&self.state.join("data.init"))?;
        remove_dir_if_exists(&self.state.join("run"))?;
        let short = short_socket_dir(&self.state);
        if fs::symlink_metadata(&short).is_ok_and(|m| m.is_dir()) {
            remove_dir_if_exists(&short)?;
        }
        let log = self.state.join("server.log");
        if log.exists() {
            fs::remove_file(&log).map_err(|e| Error::io("remove", &log, e))?;
        }
        Ok(existed)
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

    /// `psql` from the cluster's binaries, else from PATH.
    pub fn psql(&self) -> Result<PathBuf> {
        if let Ok(bin) = self.binaries() {
            let p = bin.dir.join("psql");
            if is_executable(&p) {
                return Ok(p);
            }
        }
        path_dirs()
            .into_iter()
            .map(|d| d.join("psql"))
            .find(|p| is_executable(p))
            .ok_or_else(|| {
                dev_error(
                    "psql not found: install the PostgreSQL client (Debian/Ubuntu: apt install postgresql-client; macOS: brew install libpq)",
                )
            })
    }
}

/// The dev cluster's URL for a command that found no database URL configured: starts the
/// cluster if needed and says, in one line on stderr, which database is used.
pub fn fallback_url(project: &Project) -> Result<DbUrl> {
    let cluster = Cluster::for_project(&project.root)?;
    let how = cluster.ensure_running()?;
    eprintln!(
        "pgx: no database URL set; using database {DATABASE:?} of the dev cluster in {} ({})",
        cluster.describe(),
        how.label()
    );
    Ok(cluster.url())
}

/// `pgx dev ...`
pub fn command(project: &Project, cmd: &cli::Dev) -> Result<()> {
    let cluster = Cluster::for_project(&project.root)?;
    match cmd {
        cli::Dev::Start => {
            let how = cluster.ensure_running()?;
            eprintln!(
                "pgx: dev cluster in {}: {}",
                cluster.describe(),
                how.label()
            );
            out(&format!("{}\n", cluster.url().expose()))
        }
        cli::Dev::Stop => {
            let stopped = cluster.stop()?;
            eprintln!(
                "pgx: dev cluster in {}: {}",
                cluster.describe(),
                if stopped { "stopped it" } else { "not running" }
            );
            Ok(())
        }
        cli::Dev::Status { json } => {
            let status = cluster.status()?;
            if *json {
                return json_out(
                    &serde_json::to_value(&status)
                        .map_err(|e| dev_error(format!("cannot print the status as JSON: {e}")))?,
                );
            }
            let state = match (status.created, status.running) {
                (false, _) => {
                    "not created (the first command that needs a database creates it)".to_string()
                }
                (true, false) => "stopped".to_string(),
                (true, true) => format!(
                    "running (pid {})",
                    status
                        .pid
                        .map_or_else(|| "?".to_string(), |p| p.to_string())
                ),
            };
            let mut text = format!("dev cluster: {state}\n");
            if let Some(v) = &status.version {
                text.push_str(&format!("version:     PostgreSQL {v}\n"));
            }
            text.push_str(&format!(
                "data:        {}\nsocket:      {}\nlog:         {}\nurl:         {}\n",
                status.data_dir.display(),
                status.socket_dir.display(),
                status.log.display(),
                status.url
            ));
            if let Some(user) = &status.server_user {
                text.push_str(&format!(
                    "server user: {user} (PostgreSQL refuses to run as root)\n"
                ));
            }
            out(&text)
        }
        cli::Dev::Url => {
            cluster.ensure_running()?;
            out(&format!("{}\n", cluster.url().expose()))
        }
        cli::Dev::Psql { args } => {
            let psql = cluster.psql()?;
            cluster.ensure_running()?;
            let err = Command::new(&psql)
                .arg(cluster.url().expose())
                .args(args)
                .exec();
            Err(dev_error(format!("cannot run {}: {err}", psql.display())))
        }
        cli::Dev::Reset { yes: false } => Err(Error::Usage(format!(
            "pgx dev reset deletes the dev cluster in {} and every database in it: pass --yes to confirm",
            cluster.describe()
        ))),
        cli::Dev::Reset { yes: true } => {
            let existed = cluster.reset()?;
            eprintln!(
                "pgx: dev cluster in {}: {}",
                cluster.describe(),
                if existed {
                    "deleted it; the next command that needs a database creates a fresh one"
                } else {
                    "there was none"
                }
            );
            Ok(())
        }
    }
}

/// The cluster's URL: the socket directory percent-encoded as the host, as both libpq and sqlx
/// read it (a URL with an empty host could not have its user or database changed).
pub fn socket_url(dir: &Path, port: u16, database: &str) -> DbUrl {
    DbUrl::new(format!(
        "postgres://{SUPERUSER}@{}:{port}/{}",
        crate::config::percent_encode(&dir.to_string_lossy()),
        crate::config::percent_encode(database)
    ))
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

/// One element of a list setting (`unix_socket_directories`), double-quoted so commas and
/// spaces in the path survive.
fn list_element(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A quoted string of postgresql.conf.
fn conf_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

fn output_text(out: &Output) -> String {
    let text = format!(
        "{} {}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let text = one_line(&text);
    if text.is_empty() {
        format!("exit status {}", out.status)
    } else {
        text
    }
}

/// The last FATAL/PANIC/ERROR lines of the server log: why it did not start.
fn log_tail(log: &Path) -> Option<String> {
    let text = fs::read_to_string(log).ok()?;
    let lines: Vec<&str> = text
        .lines()
        .rev()
        .take(40)
        .filter(|l| l.contains("FATAL") || l.contains("PANIC") || l.contains("ERROR"))
        .take(2)
        .collect();
    (!lines.is_empty()).then(|| one_line(&lines.into_iter().rev().collect::<Vec<_>>().join("; ")))
}

fn remove_dir_if_exists(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", dir, e)),
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

fn parse_passwd_line(line: &str) -> Option<ServerUser> {
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

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
}

fn path_dirs() -> Vec<PathBuf> {
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

const INSTALL_HINT: &str = "install PostgreSQL (Debian/Ubuntu: apt install postgresql; Fedora/RHEL: dnf install postgresql-server; macOS: brew install postgresql@17), set PGX_PG_BINDIR to the folder holding initdb, or set DATABASE_URL to a server you already have";

/// `pg_ctl --version` → ("15.13", 15).
fn version_of(dir: &Path) -> Option<(String, u32)> {
    let out = Command::new(dir.join("pg_ctl"))
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    parse_version(&String::from_utf8_lossy(&out.stdout))
}

fn parse_version(text: &str) -> Option<(String, u32)> {
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

/// The first candidate holding initdb, pg_ctl and postgres (of major version `want` if given).
pub fn find_binaries(want: Option<u32>) -> Result<Binaries> {
    find_binaries_in(candidate_dirs(), want)
}

fn find_binaries_in(candidates: Vec<PathBuf>, want: Option<u32>) -> Result<Binaries> {
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

#[cfg(test)]
mod tests {
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
