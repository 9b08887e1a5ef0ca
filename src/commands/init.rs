//! `pgx init`: a new project's `pgx.yaml`, `migrations/`, `.gitattributes` and `.gitignore`.

use std::fs;
use std::io::Write as _;
use std::path::Path;

use crate::error::{Error, Result};
use crate::project::{CONFIG_FILE, Config};

pub fn run(path: Option<&Path>) -> Result<()> {
    let cwd = std::env::current_dir().map_err(|e| Error::io("read", ".", e))?;
    let root = path.map_or_else(|| cwd.clone(), |p| cwd.join(p));
    let config_path = root.join(CONFIG_FILE);
    if config_path.exists() {
        return Err(Error::AlreadyInitialised { path: config_path });
    }
    let config = Config::default();
    let migrations = root.join(&config.migrations);
    fs::create_dir_all(&migrations).map_err(|e| Error::io("create directory", &migrations, e))?;
    // Checksums cover raw bytes: a checkout that turned LF into CRLF would make every applied
    // migration look modified.
    ensure_line(&root.join(".gitattributes"), "*.sql text eol=lf")?;
    ensure_line(&root.join(".gitignore"), ".pgx/")?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&config_path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::AlreadyInitialised {
                path: config_path.clone(),
            },
            _ => Error::io("create", &config_path, e),
        })?;
    file.write_all(Config::template().as_bytes())
        .map_err(|e| Error::io("write", &config_path, e))
}

/// Appends `line` to the file unless it already holds it.
fn ensure_line(path: &Path, line: &str) -> Result<()> {
    let existing = match fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    if existing.lines().any(|l| l.trim() == line) {
        return Ok(());
    }
    let sep = if existing.is_empty() || existing.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    fs::write(path, format!("{existing}{sep}{line}\n")).map_err(|e| Error::io("write", path, e))
}
