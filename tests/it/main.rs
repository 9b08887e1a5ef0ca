//! The integration tests: one binary, one module per capability. Every test that touches
//! PostgreSQL makes its own database (see `support`), so they run in parallel.

mod support;

mod audit;
mod timestamps;
