//! The migration runner: migration files on disk (named and checksummed as sqlx does), the
//! `_sqlx_migrations` history, planning and applying `up`/`down` under sqlx's advisory lock,
//! `pgx check`, and running the tenant migrations in every tenant schema.
//!
//! Uses `db` (connections, catalog snapshots), `sql` and `error`; never `pattern` or `commands`.
//! It prints nothing: callers get outcomes and reports to show as they choose.

pub mod baseline;
pub mod check;
pub mod files;
pub mod history;
pub mod names;
pub mod partition;
pub mod plan;
pub mod runner;
pub mod tenants;

pub use files::{Migration, MigrationFile};
pub use history::{State, StatusEntry};
pub use plan::Down;
pub use runner::{Outcome, Runner, Scope};
