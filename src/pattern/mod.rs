//! The pattern engine: the catalog of patterns (built-in and the project's own), their specs and
//! parameters, and rendering them into migration SQL through Tera with pgx's quoting filters.
//!
//! Uses `project` (where a project keeps its own patterns), `sql`, `yaml` and `error`; never a
//! database, never `commands`.

pub mod catalog;
pub mod filters;
pub mod infer;
pub mod infra;
pub mod params;
pub mod render;
pub mod spec;

pub use catalog::{Catalog, Origin, Sources};
pub use render::{Rendered, Renderer, Step, render_pattern, render_pattern_in, render_recording};
pub use spec::{Embedded, Param, Pattern, Provides, Requires, Resolved, Target};
