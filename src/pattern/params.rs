//! Pattern parameter types, and turning user text (`--set key=value`, YAML defaults) into typed
//! values. Identifiers are taken literally (`--set column=Tenant Id` names the column
//! `Tenant Id`): quoting for SQL happens at render time, never here.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use crate::sql::check_ident;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    /// One PostgreSQL name (table, column, role, schema...).
    Identifier,
    /// Comma-separated names; an item may be double-quoted to hold a comma.
    IdentifierList,
    /// `name` or `schema.name`; a part may be double-quoted to hold a dot.
    QualifiedIdentifier,
    /// A foreign-key target: `[schema.]table(column[, column...])`.
    Reference,
    String,
    Integer,
    Boolean,
    /// One of the spec's `values`.
    Enum,
    /// A PostgreSQL interval such as `1 month` or `7 days 12 hours`.
    Interval,
    /// A duration with its unit (`200ms`, `5s`, `2min`, `1h`), as every pgx duration is
    /// written; templates get the canonical text, which PostgreSQL reads as a time setting.
    Duration,
}

impl ParamType {
    /// How the expected input is described in error messages and docs.
    pub fn describe(self, values: &[String]) -> String {
        match self {
            ParamType::Identifier => "an identifier".into(),
            ParamType::IdentifierList => "a comma-separated list of identifiers".into(),
            ParamType::QualifiedIdentifier => "a name or schema.name".into(),
            ParamType::Reference => "a reference like table(column) or schema.table(column)".into(),
            ParamType::String => "a string".into(),
            ParamType::Integer => "an integer".into(),
            ParamType::Boolean => "true or false".into(),
            ParamType::Enum => format!("one of {}", values.join(", ")),
            ParamType::Interval => "an interval such as `1 month` or `7 days`".into(),
            ParamType::Duration => "a duration with its unit, such as 200ms, 5s or 2min".into(),
        }
    }

    pub fn placeholder(self) -> &'static str {
        match self {
            ParamType::Identifier => "name",
            ParamType::IdentifierList => "name,name",
            ParamType::QualifiedIdentifier => "schema.name",
            ParamType::Reference => "table(column)",
            ParamType::String => "text",
            ParamType::Integer => "integer",
            ParamType::Boolean => "true|false",
            ParamType::Enum => "value",
            ParamType::Interval => "interval",
            ParamType::Duration => "duration",
        }
    }
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self).ok();
        f.write_str(s.as_ref().and_then(Json::as_str).unwrap_or("?"))
    }
}

/// A value failed to parse; `reason` says what exactly is wrong, when more can be said than
/// the expected type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub reason: Option<String>,
}

impl ParseError {
    fn because(reason: impl Into<String>) -> Self {
        ParseError {
            reason: Some(reason.into()),
        }
    }
    fn plain() -> Self {
        ParseError { reason: None }
    }
}

/// Parses user text as a value of type `ty`; the result is what templates see.
pub fn parse_text(ty: ParamType, text: &str, values: &[String]) -> Result<Json, ParseError> {
    match ty {
        ParamType::Identifier => ident(text).map(Json::from),
        ParamType::IdentifierList => {
            let items = split_list(text)?;
            items
                .iter()
                .map(|i| ident(i))
                .collect::<Result<Vec<_>, _>>()
                .map(Json::from)
        }
        ParamType::QualifiedIdentifier => qualified(text),
        ParamType::Reference => reference(text),
        ParamType::String => {
            if text.contains('\0') {
                Err(ParseError::because("contains a NUL character"))
            } else {
                Ok(Json::from(text))
            }
        }
        ParamType::Integer => text
            .trim()
            .parse::<i64>()
            .map(Json::from)
            .map_err(|_| ParseError::plain()),
        // One spelling, as documented: `yes`, `on` or `1` would each need explaining.
        ParamType::Boolean => match text.trim() {
            "true" => Ok(Json::Bool(true)),
            "false" => Ok(Json::Bool(false)),
            _ => Err(ParseError::plain()),
        },
        ParamType::Enum => {
            if values.iter().any(|v| v == text) {
                Ok(Json::from(text))
            } else {
                Err(
                    match crate::error::closest(text, values.iter().map(String::as_str)) {
                        Some(s) => ParseError::because(format!("did you mean `{s}`?")),
                        None => ParseError::plain(),
                    },
                )
            }
        }
        ParamType::Interval => interval(text).map(Json::from),
        ParamType::Duration => crate::duration::parse(text)
            .map(|d| Json::from(d.text))
            .map_err(ParseError::because),
    }
}

/// Converts a YAML default into the parameter's type. Scalars go through the same parser as
/// `--set`, so a default means exactly what typing it on the command line would.
pub fn parse_yaml(
    ty: ParamType,
    value: &serde_yaml::Value,
    values: &[String],
) -> Result<Json, ParseError> {
    use serde_yaml::Value as Y;
    match (ty, value) {
        (ParamType::IdentifierList, Y::Sequence(items)) => items
            .iter()
            .map(|item| match item {
                Y::String(s) => ident(s).map(Json::from),
                _ => Err(ParseError::because("list items must be strings")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Json::from),
        (ParamType::Integer, Y::Number(n)) => {
            n.as_i64().map(Json::from).ok_or_else(ParseError::plain)
        }
        (ParamType::Boolean, Y::Bool(b)) => Ok(Json::Bool(*b)),
        (ParamType::Integer | ParamType::Boolean, Y::String(_)) => Err(ParseError::because(
            "write it unquoted so YAML reads it as a number or boolean",
        )),
        (ParamType::Duration, Y::Number(n)) => Err(ParseError::because(format!(
            "a duration needs its unit, e.g. {n}ms or {n}s"
        ))),
        (_, Y::String(s)) => parse_text(ty, s, values),
        (ParamType::String | ParamType::Enum | ParamType::Interval, Y::Number(n)) => {
            parse_text(ty, &n.to_string(), values)
        }
        _ => Err(ParseError::plain()),
    }
}

/// Renders a typed value back as the text `--set` would accept.
pub fn to_text(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Array(items) => items.iter().map(to_text).collect::<Vec<_>>().join(","),
        Json::Object(map) => {
            let part = |k: &str| map.get(k).and_then(Json::as_str).map(str::to_string);
            let mut out = String::new();
            if let Some(s) = part("schema") {
                out.push_str(&s);
                out.push('.');
            }
            out.push_str(&part("name").or_else(|| part("table")).unwrap_or_default());
            if let Some(Json::Array(cols)) = map.get("columns") {
                out.push('(');
                out.push_str(&cols.iter().map(to_text).collect::<Vec<_>>().join(","));
                out.push(')');
            }
            out
        }
        other => other.to_string(),
    }
}

fn ident(name: &str) -> Result<String, ParseError> {
    check_ident(name)
        .map(|()| name.to_string())
        .map_err(|e| ParseError::because(e.to_string()))
}

/// Splits on `sep` outside double quotes; a quoted item is taken verbatim (with `""` meaning a
/// quote), an unquoted one is trimmed.
fn split_quoted(text: &str, sep: char) -> Result<Vec<String>, ParseError> {
    let mut items = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut item = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        item.push('"');
                    }
                    Some('"') => break,
                    Some(c) => item.push(c),
                    None => return Err(ParseError::because("unterminated double quote")),
                }
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            match chars.next() {
                None => {
                    items.push(item);
                    return Ok(items);
                }
                Some(c) if c == sep => items.push(item),
                Some(c) => {
                    return Err(ParseError::because(format!(
                        "unexpected `{c}` after a quoted name"
                    )));
                }
            }
        } else {
            let mut ended = true;
            for c in chars.by_ref() {
                if c == sep {
                    ended = false;
                    break;
                }
                item.push(c);
            }
            items.push(item.trim().to_string());
            if ended {
                return Ok(items);
            }
        }
    }
}

fn split_list(text: &str) -> Result<Vec<String>, ParseError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    split_quoted(text, ',')
}

fn qualified(text: &str) -> Result<Json, ParseError> {
    let parts = split_quoted(text, '.')?;
    match parts.as_slice() {
        [name] => Ok(json!({ "schema": null, "name": ident(name)? })),
        [schema, name] => Ok(json!({ "schema": ident(schema)?, "name": ident(name)? })),
        _ => Err(ParseError::because(
            "too many dots; double-quote a name that contains one",
        )),
    }
}

fn reference(text: &str) -> Result<Json, ParseError> {
    let text = text.trim();
    let Some(open) = find_unquoted(text, '(') else {
        return Err(ParseError::because("missing (column)"));
    };
    let Some(inner) = text[open + 1..].strip_suffix(')') else {
        return Err(ParseError::because("missing closing parenthesis"));
    };
    let target = qualified(&text[..open])?;
    let columns = split_list(inner)?
        .iter()
        .map(|c| ident(c))
        .collect::<Result<Vec<_>, _>>()?;
    if columns.is_empty() {
        return Err(ParseError::because("no column between the parentheses"));
    }
    Ok(json!({
        "schema": target["schema"],
        "table": target["name"],
        "columns": columns,
    }))
}

fn find_unquoted(text: &str, needle: char) -> Option<usize> {
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == needle && !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

const INTERVAL_UNITS: &[&str] = &[
    "microsecond",
    "millisecond",
    "second",
    "minute",
    "hour",
    "day",
    "week",
    "month",
    "year",
    "decade",
    "century",
    "centuries",
    "millennium",
    "millennia",
];

/// Accepts `<integer> <unit>` groups (`1 month`, `7 days 12 hours`), the form people write and
/// every PostgreSQL version reads the same way; the result is normalised to single spaces.
fn interval(text: &str) -> Result<String, ParseError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() || words.len() % 2 != 0 {
        return Err(ParseError::plain());
    }
    for pair in words.chunks(2) {
        let (n, unit) = (pair[0], pair[1].to_ascii_lowercase());
        if n.parse::<i64>().is_err() {
            return Err(ParseError::because(format!("`{n}` is not an integer")));
        }
        let singular = unit.strip_suffix('s').unwrap_or(&unit);
        if !INTERVAL_UNITS.contains(&singular) && !INTERVAL_UNITS.contains(&unit.as_str()) {
            return Err(ParseError::because(format!("unknown unit `{}`", pair[1])));
        }
    }
    Ok(words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(ty: ParamType, s: &str) -> Result<Json, ParseError> {
        parse_text(ty, s, &["a".into(), "bee".into()])
    }

    #[test]
    fn identifiers_are_literal_names() {
        assert_eq!(
            p(ParamType::Identifier, "Tenant Id").unwrap(),
            json!("Tenant Id")
        );
        assert!(p(ParamType::Identifier, "").is_err());
        assert!(p(ParamType::Identifier, &"x".repeat(64)).is_err());
    }

    #[test]
    fn lists_split_on_commas_outside_quotes() {
        assert_eq!(
            p(ParamType::IdentifierList, " a, B c ,\"x,y\"").unwrap(),
            json!(["a", "B c", "x,y"])
        );
        assert_eq!(p(ParamType::IdentifierList, "").unwrap(), json!([]));
        assert!(p(ParamType::IdentifierList, "a,,b").is_err());
        assert!(p(ParamType::IdentifierList, "\"a").is_err());
    }

    #[test]
    fn qualified_names_and_references() {
        assert_eq!(
            p(ParamType::QualifiedIdentifier, "s.t").unwrap(),
            json!({"schema": "s", "name": "t"})
        );
        assert_eq!(
            p(ParamType::QualifiedIdentifier, "\"a.b\"").unwrap(),
            json!({"schema": null, "name": "a.b"})
        );
        assert!(p(ParamType::QualifiedIdentifier, "a.b.c").is_err());
        assert_eq!(
            p(ParamType::Reference, "core.tenants(id)").unwrap(),
            json!({"schema": "core", "table": "tenants", "columns": ["id"]})
        );
        assert!(p(ParamType::Reference, "tenants").is_err());
        assert!(p(ParamType::Reference, "tenants()").is_err());
        assert_eq!(
            to_text(&p(ParamType::Reference, "t(a, b)").unwrap()),
            "t(a,b)"
        );
    }

    #[test]
    fn scalars() {
        assert_eq!(p(ParamType::Integer, "42").unwrap(), json!(42));
        assert!(p(ParamType::Integer, "4x").is_err());
        assert_eq!(p(ParamType::Boolean, "true").unwrap(), json!(true));
        assert_eq!(p(ParamType::Boolean, "false").unwrap(), json!(false));
        for other in ["maybe", "yes", "on", "1", "True", "FALSE", "0"] {
            assert!(p(ParamType::Boolean, other).is_err(), "{other}");
        }
        assert_eq!(p(ParamType::Duration, "2m").unwrap(), json!("2min"));
        assert!(p(ParamType::Duration, "5000").is_err());
        assert_eq!(p(ParamType::Enum, "bee").unwrap(), json!("bee"));
        assert_eq!(
            p(ParamType::Enum, "be").unwrap_err().reason.as_deref(),
            Some("did you mean `bee`?")
        );
        assert_eq!(
            p(ParamType::Interval, " 1   month ").unwrap(),
            json!("1 month")
        );
        assert_eq!(
            p(ParamType::Interval, "7 days 12 Hours").unwrap(),
            json!("7 days 12 Hours")
        );
        assert!(p(ParamType::Interval, "1 fortnight").is_err());
        assert!(p(ParamType::Interval, "1 day'; drop").is_err());
    }
}
