//! The integration tests: one binary, one module per capability. Every test that touches
//! PostgreSQL makes its own database (see `support`), so they run in parallel.

mod support;

mod adoption;
mod audit;
mod catalog_snapshot;
mod check;
mod cli;
mod dev;
mod first_hour;
mod help;
mod history_trust;
mod hostile;
mod migrate;
mod partition;
mod partition_check;
mod partition_combo;
mod partition_cron;
mod partition_index;
mod pattern_engine;
mod readme;
mod runner;
mod search;
mod search_online;
mod search_rls;
mod search_security;
mod snapshots;
mod soft_delete;
mod soft_delete_cascade;
mod soft_delete_combined;
mod soft_delete_render;
mod soft_delete_schema;
mod sqlx_interop;
mod tenant_check;
mod tenant_citus;
mod tenant_concurrently;
mod tenant_doors;
mod tenant_partitions;
mod tenant_render;
mod tenant_rls;
mod tenant_schemas;
mod tenant_security;
mod tenant_support;
mod timestamps;
mod tls;
