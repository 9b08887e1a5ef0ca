//! Whether a text can be a value of a PostgreSQL type, checked without a server, so that a
//! pattern parameter destined for a column (`backfill=1` for a uuid tenant column) is refused
//! when the migration is written rather than when it is applied. Types this module does not know
//! are not checked (the server still checks them when the migration runs).

/// `Err(reason)` when `text` cannot be a value of `sql_type`; `Ok` when it can, or when the type
/// is not one checked here.
pub fn check(sql_type: &str, text: &str) -> Result<(), String> {
    let ty = sql_type.trim().to_ascii_lowercase();
    let t = text.trim();
    let ok = match ty.as_str() {
        "uuid" => is_uuid(t),
        "smallint" | "int2" => t.parse::<i16>().is_ok() && plain_integer(t),
        "integer" | "int" | "int4" => t.parse::<i32>().is_ok() && plain_integer(t),
        "bigint" | "int8" => t.parse::<i64>().is_ok() && plain_integer(t),
        "numeric" | "decimal" | "real" | "float4" | "double precision" | "float8" => is_number(t),
        "boolean" | "bool" => matches!(
            t.to_ascii_lowercase().as_str(),
            "t" | "f" | "true" | "false" | "yes" | "no" | "on" | "off" | "1" | "0"
        ),
        "json" | "jsonb" => serde_json::from_str::<serde_json::Value>(t).is_ok(),
        "date" => is_date(t),
        _ => !text.contains('\0'),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("not a valid {ty} value"))
    }
}

fn plain_integer(t: &str) -> bool {
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn is_number(t: &str) -> bool {
    let lower = t.to_ascii_lowercase();
    if ["nan", "infinity", "+infinity", "-infinity"].contains(&lower.as_str()) {
        return true;
    }
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    body.bytes().all(|b| {
        b.is_ascii_digit() || b == b'.' || b == b'e' || b == b'E' || b == b'+' || b == b'-'
    }) && body
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit() || b == b'.')
        && t.parse::<f64>().is_ok()
}

/// PostgreSQL's accepted forms: 32 hex digits, optionally in braces, with a hyphen allowed after
/// any group of four digits.
fn is_uuid(t: &str) -> bool {
    let inner = match t.strip_prefix('{') {
        Some(rest) => match rest.strip_suffix('}') {
            Some(inner) => inner,
            None => return false,
        },
        None => t,
    };
    let mut digits = 0;
    let mut prev_hyphen = true;
    for c in inner.chars() {
        if c == '-' {
            if prev_hyphen || digits % 4 != 0 {
                return false;
            }
            prev_hyphen = true;
        } else if c.is_ascii_hexdigit() {
            digits += 1;
            prev_hyphen = false;
        } else {
            return false;
        }
    }
    digits == 32 && !prev_hyphen
}

/// `YYYY-MM-DD` with a real month and day.
fn is_date(t: &str) -> bool {
    chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").is_ok()
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn values_are_checked_against_their_type() {
        assert!(check("uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").is_ok());
        assert!(check("uuid", "{A0EEBC99-9C0B4EF8BB6D6BB9BD380A11}").is_ok());
        assert!(check("uuid", "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11").is_ok());
        assert_eq!(check("uuid", "1"), Err("not a valid uuid value".into()));
        assert!(check("uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1").is_err());
        assert!(check("uuid", "a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11").is_err());
        assert!(check("bigint", " -42 ").is_ok());
        assert!(check("bigint", "4x").is_err());
        assert!(check("integer", "3000000000").is_err());
        assert!(check("int8", "3000000000").is_ok());
        assert!(check("numeric", "1.5e3").is_ok());
        assert!(check("numeric", "e3").is_err());
        assert!(check("boolean", "on").is_ok());
        assert!(check("date", "2024-02-30").is_err());
        assert!(check("jsonb", "{\"a\": 1}").is_ok());
        assert!(check("text", "anything at all").is_ok());
        assert!(check("text", "nul\0").is_err());
        assert!(
            check("inet", "whatever").is_ok(),
            "types not checked here pass"
        );
    }
}
