//! Creating, starting, stopping and deleting the dev cluster with `initdb` and `pg_ctl`, under a
//! file lock so that concurrent pgx processes do each thing once.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::binaries::{Binaries, is_executable, path_dirs};
use super::machine;
use super::user::{effective_uid, unsearchable_ancestor};
use super::{Cluster, SUPERUSER, Started, dev_error, path_hash, short_socket_dir};
use crate::error::{Error, Result, one_line};

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

/// pg_cron, when its package is installed: it must be preloaded, and it runs each job in a
/// background worker because the cluster has no TCP port for its default libpq connections.
/// Its jobs live in the database `cron.database_name` names, by default `postgres`, the
/// database pgx's commands use.
const PG_CRON: &str = "shared_preload_libraries = 'pg_cron'
cron.use_background_workers = on
";

/// Whether the server's library folder holds `library` (`<bindir>/../lib`, as Debian, RPM and
/// source installs lay it out): preloading a missing library would stop the server starting.
fn has_library(bin: &Binaries, library: &str) -> bool {
    bin.dir
        .parent()
        .is_some_and(|prefix| prefix.join("lib").join(format!("{library}.so")).is_file())
}

/// How long a pgx process waits for another one that is creating or starting the cluster.
const LOCK_WAIT: Duration = Duration::from_secs(300);

/// Seconds `pg_ctl` waits for the server to start or stop.
const PG_CTL_WAIT: &str = "120";

impl Cluster {
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

    /// Holds `.pgx/lock` until dropped, waiting for another pgx process that holds it.
    pub(super) fn lock(&self) -> Result<fs::File> {
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

    pub(super) fn is_running(&self, bin: &Binaries) -> Result<bool> {
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
        self.note_whereabouts();
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

    /// Makes the cluster findable by `pgx dev list` and `prune`: a registry entry, and, for data
    /// kept in the server user's home, a file there naming the project's `.pgx` (so the data
    /// can be collected once the project is deleted). Best effort.
    fn note_whereabouts(&self) {
        machine::register(&self.state);
        let data = self.data_dir();
        if data != self.link()
            && let Some(home) = data.parent()
        {
            let file = home.join(machine::PROJECT_FILE);
            if !file.is_file() {
                let _ = fs::write(&file, format!("{}\n", self.state.display()));
            }
        }
    }

    pub(super) fn create(&self, bin: &Binaries) -> Result<()> {
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

    pub(super) fn start(&self, bin: &Binaries) -> Result<()> {
        let data = self.data_dir();
        let socket = self.socket_dir();
        self.prepare_socket_dir(&socket)?;
        let conf = data.join("pgx.conf");
        fs::write(
            &conf,
            format!(
                "# Written by pgx before every start of the dev cluster; override with ALTER SYSTEM.\n{SETTINGS}{}unix_socket_directories = {}\n",
                if has_library(bin, "pg_cron") { PG_CRON } else { "" },
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
        machine::unregister(&self.state);
        Ok(existed)
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

/// One element of a list setting (`unix_socket_directories`), double-quoted so commas and
/// spaces in the path survive.
pub(super) fn list_element(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A quoted string of postgresql.conf.
pub(super) fn conf_string(s: &str) -> String {
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
