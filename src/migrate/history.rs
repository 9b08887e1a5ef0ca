//! The history table `_sqlx_migrations`, exactly as sqlx keeps it, and the status of each
//! migration it implies.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::files::Migration;

/// The history table, created unqualified (in the first schema of `search_path`) as sqlx does.
pub(super) const TABLE_DDL: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
)";

/// One row of `_sqlx_migrations`.
#[derive(Debug, Clone)]
pub struct Applied {
    pub version: i64,
    pub description: String,
    pub installed_on: DateTime<Utc>,
    pub success: bool,
    pub checksum: Vec<u8>,
    pub execution_time: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Applied,
    Pending,
    Modified,
    FileMissing,
    Failed,
}

impl State {
    pub fn label(self) -> &'static str {
        match self {
            State::Applied => "applied",
            State::Pending => "pending",
            State::Modified => "modified",
            State::FileMissing => "file missing",
            State::Failed => "failed",
        }
    }
}

/// One line of `pgx migrate status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusEntry {
    pub version: i64,
    pub description: String,
    pub state: State,
    pub installed_on: Option<DateTime<Utc>>,
    /// Milliseconds, as recorded (sqlx stores nanoseconds).
    pub execution_time_ms: Option<f64>,
    pub file: Option<String>,
    pub reversible: bool,
}

/// sqlx's lock id for a database, so pgx and sqlx-cli never migrate one database at once.
pub fn sqlx_lock_id(database: &str) -> i64 {
    const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    0x3d32_ad9e * i64::from(CRC.checksum(database.as_bytes()))
}

/// Merges files and history into status lines, ordered by version.
pub fn status_of(migrations: &[Migration], applied: &[Applied]) -> Vec<StatusEntry> {
    let mut out: BTreeMap<i64, StatusEntry> = BTreeMap::new();
    for m in migrations {
        out.insert(
            m.version,
            StatusEntry {
                version: m.version,
                description: m.description.clone(),
                state: State::Pending,
                installed_on: None,
                execution_time_ms: None,
                file: Some(m.up.path.display().to_string()),
                reversible: m.down.is_some(),
            },
        );
    }
    for a in applied {
        let checksum = migrations
            .iter()
            .find(|m| m.version == a.version)
            .map(|m| m.up.checksum.as_slice());
        let state = match (a.success, checksum) {
            (false, _) => State::Failed,
            (true, None) => State::FileMissing,
            (true, Some(c)) if c == a.checksum.as_slice() => State::Applied,
            (true, Some(_)) => State::Modified,
        };
        let entry = out.entry(a.version).or_insert_with(|| StatusEntry {
            version: a.version,
            description: a.description.clone(),
            state,
            installed_on: None,
            execution_time_ms: None,
            file: None,
            reversible: false,
        });
        entry.state = state;
        entry.installed_on = Some(a.installed_on);
        #[allow(clippy::cast_precision_loss)]
        {
            entry.execution_time_ms =
                (a.execution_time >= 0).then(|| a.execution_time as f64 / 1e6);
        }
    }
    out.into_values().collect()
}
