//! Durations as people write them, with their unit: `200ms`, `5s`, `2min` (or `2m`), `1h`, and
//! a bare `0`. One convention for command-line flags and pattern parameters alike; the canonical
//! text ([`Parsed::text`]) is also what PostgreSQL reads for a time setting such as
//! `lock_timeout`, so a template can hand it over as a quoted literal.

use std::time::Duration;

/// A parsed duration and its canonical text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub duration: Duration,
    /// `<n><unit>` with PostgreSQL's spelling of the unit (`min`, not `m`), or `0`.
    pub text: String,
}

/// The units accepted, with PostgreSQL's spelling and their length in milliseconds.
const UNITS: &[(&str, &str, u64)] = &[
    ("ms", "ms", 1),
    ("s", "s", 1_000),
    ("m", "min", 60_000),
    ("min", "min", 60_000),
    ("h", "h", 3_600_000),
];

/// Parses `text`; the error says what was expected.
pub fn parse(text: &str) -> Result<Parsed, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| {
        format!("expected a duration with its unit, such as 200ms, 5s or 2min; got {text:?}")
    })?;
    let unit = unit.trim();
    if unit.is_empty() {
        return if n == 0 {
            Ok(Parsed {
                duration: Duration::ZERO,
                text: "0".into(),
            })
        } else {
            Err(format!("{text:?} has no unit: write {n}ms, {n}s or {n}min"))
        };
    }
    let Some((_, pg, ms)) = UNITS.iter().find(|(u, _, _)| *u == unit) else {
        return Err(format!(
            "unknown unit {unit:?} in {text:?} (use ms, s, min or h)"
        ));
    };
    let total = n
        .checked_mul(*ms)
        .filter(|&t| t <= i32::MAX as u64)
        .ok_or_else(|| format!("{text:?} is too long (at most 24 days)"))?;
    Ok(Parsed {
        duration: Duration::from_millis(total),
        text: format!("{n}{pg}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_required_and_normalised_for_postgresql() {
        let p = |s: &str| parse(s).map(|p| (p.duration.as_millis(), p.text));
        assert_eq!(p("200ms"), Ok((200, "200ms".into())));
        assert_eq!(p(" 5s "), Ok((5_000, "5s".into())));
        assert_eq!(p("2m"), Ok((120_000, "2min".into())));
        assert_eq!(p("2min"), Ok((120_000, "2min".into())));
        assert_eq!(p("1h"), Ok((3_600_000, "1h".into())));
        assert_eq!(p("0"), Ok((0, "0".into())));
        assert!(p("5").unwrap_err().contains("no unit"));
        assert!(p("5 s").is_ok(), "a space before the unit is fine");
        assert!(p("5sec").unwrap_err().contains("unknown unit"));
        assert!(p("-5s").is_err());
        assert!(p("1e3ms").is_err());
        assert!(p("99999999h").unwrap_err().contains("too long"));
    }
}
