//! Schema-aware parameters, declared in the pattern's YAML: a parameter's `infer:` is a catalog
//! query `pgx new` runs (read-only) when the user did not set the parameter and a database is
//! reachable. Adding inference to a pattern needs YAML, never Rust.
//!
//! The query names its inputs with placeholders, bound as query parameters (never spliced into
//! the SQL): `$table` (the table's quoted, qualified name, ready for `::regclass`), `$schema`,
//! `$table_name`, and `$<parameter>` for any parameter's current value as `--set` would write
//! it (NULL when unset). It returns no row (nothing to say) or one row of two text columns: the
//! value, read exactly like `--set NAME=VALUE`, and a message saying why. A NULL value with a
//! message is a note: something the user should know, with no choice made.
//!
//! Parameters are inferred in the order the spec declares them, so a query may use the value
//! inferred for an earlier parameter.

use serde_json::Value as Json;

use super::params::to_text;
use super::spec::{Resolved, Target};
use crate::sql::named::{Positional, positional};

/// Placeholders every query may use besides the pattern's parameters.
const BUILT_IN: &[&str] = &["table", "schema", "table_name"];

/// A parameter's inference query, with its placeholders made positional.
#[derive(Debug, Clone)]
pub struct Infer {
    pub query: String,
    pub positional: Positional,
}

impl Infer {
    pub fn new(query: &str) -> Result<Infer, String> {
        if query.trim().is_empty() {
            return Err("the query is empty".into());
        }
        Ok(Infer {
            query: query.to_string(),
            positional: positional(query)?,
        })
    }
}

/// Every placeholder must be a built-in one or a parameter; `$table` needs a table.
pub fn check_placeholders(inf: &Infer, params: &[&str], target: Target) -> Result<(), String> {
    for name in &inf.positional.names {
        let table_only = name == "table" || name == "table_name";
        if table_only && target == Target::None {
            return Err(format!(
                "${name} is not available: the pattern does not apply to a table"
            ));
        }
        if !BUILT_IN.contains(&name.as_str()) && !params.contains(&name.as_str()) {
            return Err(format!(
                "unknown placeholder ${name}: use $table, $schema, $table_name or a parameter's name ({})",
                params.join(", ")
            ));
        }
    }
    Ok(())
}

/// What the query's placeholders are bound to, in `$1`, `$2` order.
pub fn bindings(
    inf: &Infer,
    schema: &str,
    table: Option<&str>,
    resolved: &Resolved,
) -> Vec<Option<String>> {
    inf.positional
        .names
        .iter()
        .map(|name| match name.as_str() {
            "table" => table.map(|t| qualified(schema, t)),
            "table_name" => table.map(str::to_string),
            "schema" => Some(schema.to_string()),
            other => resolved
                .iter()
                .find(|(k, _)| k == other)
                .and_then(|(_, v)| (!v.is_null()).then(|| to_text(v))),
        })
        .collect()
}

/// `schema.table`, each part quoted as PostgreSQL's `quote_ident` would, so `::regclass` reads it
/// back exactly (names were checked when the command line was read).
pub fn qualified(schema: &str, table: &str) -> String {
    let q = |s: &str| {
        crate::sql::quote_ident(s)
            .map(std::borrow::Cow::into_owned)
            .unwrap_or_else(|_| format!("\"{}\"", s.replace('"', "\"\"")))
    };
    format!("{}.{}", q(schema), q(table))
}

/// One inferred choice (or note), as `pgx new` prints it and the migration's header records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inferred {
    pub parameter: String,
    /// `None`: a note, no value chosen.
    pub value: Option<String>,
    pub message: String,
}

impl Inferred {
    /// The line `pgx new` prints on stderr.
    pub fn line(&self) -> String {
        match &self.value {
            Some(v) => format!("inferred {}={v}: {}", self.parameter, self.message),
            None => format!("{}: {}", self.parameter, self.message),
        }
    }

    /// The value as the header records it, with the parameter's type (a JSON value).
    pub fn header_value(&self, resolved: &Resolved) -> Option<Json> {
        self.value.as_ref()?;
        resolved
            .iter()
            .find(|(k, _)| *k == self.parameter)
            .map(|(_, v)| v.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_checked_and_bound() {
        let inf = Infer::new(
            "SELECT 'false', 'x' FROM pg_attribute WHERE attrelid = $table::regclass AND attname = $column AND $schema <> $unset",
        )
        .unwrap();
        assert!(check_placeholders(&inf, &["column", "unset"], Target::Table).is_ok());
        let err = check_placeholders(&inf, &["column"], Target::Table).unwrap_err();
        assert!(err.contains("$unset"), "{err}");
        assert!(
            check_placeholders(&inf, &["column", "unset"], Target::None)
                .unwrap_err()
                .contains("$table")
        );
        let resolved: Resolved = vec![
            ("column".into(), Json::from("Tenant Id")),
            ("unset".into(), Json::Null),
        ];
        assert_eq!(
            bindings(&inf, "my schema", Some("Orders"), &resolved),
            vec![
                Some("\"my schema\".\"Orders\"".to_string()),
                Some("Tenant Id".to_string()),
                Some("my schema".to_string()),
                None,
            ]
        );
        assert!(Infer::new("  ").is_err());
    }
}
