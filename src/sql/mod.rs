//! SQL text: quoting identifiers and literals, and splitting files into statements. The
//! bottom layer: it uses nothing else of pgx.

mod quote;
mod split;

pub use quote::*;
pub use split::*;
