//! SQL text: quoting identifiers and literals, splitting files into statements, checking that a
//! value can be one of PostgreSQL's types, and named placeholders. The bottom layer: it uses
//! nothing else of pgx.

pub mod named;
mod quote;
mod split;
pub mod value;

pub use quote::*;
pub use split::*;
