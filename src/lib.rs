//! pgx: expert PostgreSQL patterns as reviewable, sqlx-compatible migrations.

pub mod catalog;
pub mod check;
pub mod cli;
pub mod commands;
pub mod config;
pub mod db;
pub mod dev;
pub mod error;
pub mod migration;
pub mod params;
pub mod render;
pub mod runner;
pub mod snapshot;
pub mod sql;
pub mod tenant;
pub mod yaml;

pub use error::{Error, Result};
