//! Quoting of identifiers and literals, and names derived from others.
//!
//! Everything a pattern renders passes through [`quote_ident`] or [`quote_literal`]; the
//! rules mirror PostgreSQL's own `quote_ident()` / `quote_literal()` so rendered SQL reads the
//! way a person would write it (quotes only where PostgreSQL needs them).

use std::borrow::Cow;
use std::fmt;

use sha2::{Digest, Sha256};

/// PostgreSQL truncates identifiers to `NAMEDATALEN - 1` bytes; pgx refuses longer names instead.
pub const MAX_IDENT_BYTES: usize = 63;

/// Keywords `quote_ident()` quotes: every category but "unreserved", as listed by
/// `pg_get_keywords()` on PostgreSQL 15, plus the ones PostgreSQL 16 and 17 added, so a migration
/// rendered today still parses on a newer server. Quoting a word that needs no quotes is harmless;
/// missing one is a syntax error, so the list errs on the side of quoting. Sorted for binary search.
const QUOTED_KEYWORDS: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "between",
    "bigint",
    "binary",
    "bit",
    "boolean",
    "both",
    "case",
    "cast",
    "char",
    "character",
    "check",
    "coalesce",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "dec",
    "decimal",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "exists",
    "extract",
    "false",
    "fetch",
    "float",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "greatest",
    "group",
    "grouping",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "inout",
    "int",
    "integer",
    "intersect",
    "interval",
    "into",
    "is",
    "isnull",
    "join",
    "json",
    "json_array",
    "json_arrayagg",
    "json_exists",
    "json_object",
    "json_objectagg",
    "json_query",
    "json_scalar",
    "json_serialize",
    "json_table",
    "json_value",
    "lateral",
    "leading",
    "least",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "merge_action",
    "national",
    "natural",
    "nchar",
    "none",
    "normalize",
    "not",
    "notnull",
    "null",
    "nullif",
    "numeric",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "out",
    "outer",
    "overlaps",
    "overlay",
    "placing",
    "position",
    "precision",
    "primary",
    "real",
    "references",
    "returning",
    "right",
    "row",
    "select",
    "session_user",
    "setof",
    "similar",
    "smallint",
    "some",
    "substring",
    "symmetric",
    "system_user",
    "table",
    "tablesample",
    "then",
    "time",
    "timestamp",
    "to",
    "trailing",
    "treat",
    "trim",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "values",
    "varchar",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
    "xmlattributes",
    "xmlconcat",
    "xmlelement",
    "xmlexists",
    "xmlforest",
    "xmlnamespaces",
    "xmlparse",
    "xmlpi",
    "xmlroot",
    "xmlserialize",
    "xmltable",
];

/// Keywords quoted by pgx that PostgreSQL 15 itself does not know; tests compare everything
/// else against the server's `quote_ident()`.
pub const NEWER_SERVER_KEYWORDS: &[&str] = &[
    "json",
    "json_array",
    "json_arrayagg",
    "json_exists",
    "json_object",
    "json_objectagg",
    "json_query",
    "json_scalar",
    "json_serialize",
    "json_table",
    "json_value",
    "merge_action",
    "system_user",
];

/// Why a name cannot be used as a PostgreSQL identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentError {
    Empty,
    Nul,
    /// A newline or another control character: legal in a quoted identifier, but it would end
    /// the `--` comments templates and headers write names into.
    Control,
    TooLong {
        bytes: usize,
    },
}

impl fmt::Display for IdentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentError::Empty => f.write_str("names cannot be empty"),
            IdentError::Nul => f.write_str("names cannot contain a NUL character"),
            IdentError::Control => {
                f.write_str("names cannot contain newlines or other control characters")
            }
            IdentError::TooLong { bytes } => write!(
                f,
                "it is {bytes} bytes long and PostgreSQL would silently truncate it to {MAX_IDENT_BYTES}"
            ),
        }
    }
}

impl std::error::Error for IdentError {}

/// Checks that `name` survives PostgreSQL unchanged as an identifier.
pub fn check_ident(name: &str) -> Result<(), IdentError> {
    if name.is_empty() {
        Err(IdentError::Empty)
    } else if name.contains('\0') {
        Err(IdentError::Nul)
    } else if name.chars().any(char::is_control) {
        Err(IdentError::Control)
    } else if name.len() > MAX_IDENT_BYTES {
        Err(IdentError::TooLong { bytes: name.len() })
    } else {
        Ok(())
    }
}

fn is_quoted_keyword(name: &str) -> bool {
    QUOTED_KEYWORDS.binary_search(&name).is_ok()
}

/// Quotes `name` the way `quote_ident()` does: bare when it is lower case ASCII letters, digits
/// and underscores (not leading with a digit) and not a keyword, double-quoted otherwise.
pub fn quote_ident(name: &str) -> Result<Cow<'_, str>, IdentError> {
    check_ident(name)?;
    let bytes = name.as_bytes();
    let plain = matches!(bytes[0], b'a'..=b'z' | b'_')
        && bytes
            .iter()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        && !is_quoted_keyword(name);
    if plain {
        Ok(Cow::Borrowed(name))
    } else {
        Ok(Cow::Owned(format!("\"{}\"", name.replace('"', "\"\""))))
    }
}

/// Why a string cannot become a SQL literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteralError;

impl fmt::Display for LiteralError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PostgreSQL text cannot contain a NUL character")
    }
}

impl std::error::Error for LiteralError {}

/// Quotes `value` as a string literal that means the same whatever
/// `standard_conforming_strings` is set to: a backslash switches to the `E'...'` form with
/// backslashes doubled, exactly as `quote_literal()` does.
pub fn quote_literal(value: &str) -> Result<String, LiteralError> {
    if value.contains('\0') {
        return Err(LiteralError);
    }
    let mut out = String::with_capacity(value.len() + 3);
    if value.contains('\\') {
        out.push('E');
    }
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    Ok(out)
}

/// Builds an object name from a base name (usually the table's) with a prefix and suffix, kept
/// within 63 bytes. When the plain concatenation is too long, the base is cut at a character
/// boundary and a hash of the full name is appended, so two long table names never collide on
/// the same derived name, and the same input always yields the same name (down migrations
/// recompute it).
pub fn derived_name(base: &str, prefix: &str, suffix: &str) -> String {
    let full = format!("{prefix}{base}{suffix}");
    if full.len() <= MAX_IDENT_BYTES {
        return full;
    }
    let digest = Sha256::digest(full.as_bytes());
    let hash: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    let budget = MAX_IDENT_BYTES.saturating_sub(prefix.len() + suffix.len() + hash.len() + 1);
    let mut cut = budget.min(base.len());
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    let name = format!("{prefix}{}_{hash}{suffix}", &base[..cut]);
    if name.len() <= MAX_IDENT_BYTES {
        name
    } else {
        // Only reachable when prefix and suffix alone overflow; keep the hash, which still
        // identifies the object uniquely.
        let mut cut = MAX_IDENT_BYTES - hash.len() - 1;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}_{hash}", &name[..cut])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_list_is_sorted_for_binary_search() {
        let mut sorted = QUOTED_KEYWORDS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, QUOTED_KEYWORDS);
        for k in NEWER_SERVER_KEYWORDS {
            assert!(is_quoted_keyword(k), "{k}");
        }
    }

    #[test]
    fn quote_ident_quotes_only_when_needed() {
        let cases = [
            ("orders", "orders"),
            ("_x1", "_x1"),
            ("select", "\"select\""),
            ("Orders", "\"Orders\""),
            ("order items", "\"order items\""),
            ("a\"b", "\"a\"\"b\""),
            ("1abc", "\"1abc\""),
            ("Ünïcode", "\"Ünïcode\""),
            ("ünï", "\"ünï\""),
            ("a$b", "\"a$b\""),
            ("orders; drop table x", "\"orders; drop table x\""),
            ("name", "name"),
        ];
        for (input, expected) in cases {
            assert_eq!(quote_ident(input).unwrap(), expected, "{input}");
        }
    }

    #[test]
    fn quote_ident_rejects_what_postgres_would_mangle() {
        assert_eq!(quote_ident(""), Err(IdentError::Empty));
        assert_eq!(quote_ident("a\0b"), Err(IdentError::Nul));
        assert_eq!(quote_ident("a\nDROP TABLE x; --"), Err(IdentError::Control));
        assert_eq!(quote_ident("a\rb"), Err(IdentError::Control));
        let long = "a".repeat(64);
        assert_eq!(quote_ident(&long), Err(IdentError::TooLong { bytes: 64 }));
        assert!(quote_ident(&"a".repeat(63)).is_ok());
        // Byte length counts, not characters: 32 two-byte characters are 64 bytes.
        assert_eq!(
            quote_ident(&"é".repeat(32)),
            Err(IdentError::TooLong { bytes: 64 })
        );
    }

    #[test]
    fn quote_literal_matches_postgres() {
        assert_eq!(quote_literal("it's").unwrap(), "'it''s'");
        assert_eq!(quote_literal(r"a\b").unwrap(), r"E'a\\b'");
        assert_eq!(quote_literal("").unwrap(), "''");
        assert!(quote_literal("a\0").is_err());
    }

    #[test]
    fn derived_names_fit_and_stay_distinct() {
        assert_eq!(derived_name("orders", "", "_audit"), "orders_audit");
        let a = derived_name(&"a".repeat(63), "", "_set_updated_at");
        let b = derived_name(&format!("{}b", "a".repeat(62)), "", "_set_updated_at");
        assert!(a.len() <= 63 && b.len() <= 63, "{a} {b}");
        assert_ne!(a, b);
        assert!(a.ends_with("_set_updated_at"));
        assert_eq!(a, derived_name(&"a".repeat(63), "", "_set_updated_at"));
        let multibyte = derived_name(&"é".repeat(31), "x_", "_y");
        assert!(multibyte.len() <= 63);
        assert!(derived_name("t", &"p".repeat(40), &"s".repeat(40)).len() <= 63);
    }
}
