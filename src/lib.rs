//! pgx: expert PostgreSQL patterns as reviewable, sqlx-compatible migrations.

pub mod catalog;
pub mod config;
pub mod db;
pub mod error;
pub mod migration;
pub mod params;
pub mod render;
pub mod sql;
pub mod yaml;

pub use error::{Error, Result};
