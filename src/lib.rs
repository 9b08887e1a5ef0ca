//! pgx: expert PostgreSQL patterns as reviewable, sqlx-compatible migrations.
//!
//! Layers, top to bottom; a module uses only those below it:
//!
//! - `cli` (clap types) and `commands` (one file per command), printing through `output`;
//! - `migrate` (migration files, history, runner, check, tenant schemas), which uses `db`;
//! - `pattern` (catalog, specs, parameters, rendering) and `db` (finding and connecting to the
//!   database, the dev cluster, catalog snapshots), which do not use each other;
//! - `project` (the project folder and `pgx.yaml`);
//! - `sql` (quoting, splitting), `yaml` (located YAML errors), `duration` (durations with
//!   units) and `error`.
//!
//! See ARCHITECTURE.md for the data flow of `pgx new` and `pgx migrate up`.

pub mod cli;
pub mod commands;
pub mod db;
pub mod duration;
pub mod error;
pub mod migrate;
pub mod output;
pub mod pattern;
pub mod project;
pub mod sql;
pub mod yaml;

pub use error::{Error, Result};
