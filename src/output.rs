//! Printing, in one place: data to stdout (tables or JSON), notes about what pgx is doing to
//! stderr. Only `commands` uses it; the library layers print nothing.

use std::io::Write as _;

use serde::Serialize;

use crate::error::{Error, Result};

/// Writes `text` to stdout as is.
pub fn out(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::io("write to", "stdout", e))
}

/// Writes `value` to stdout as pretty-printed JSON.
pub fn json(value: &impl Serialize) -> Result<()> {
    let value = serde_json::to_value(value).map_err(|e| Error::Render {
        message: format!("cannot print JSON: {e}"),
    })?;
    out(&format!("{value:#}\n"))
}

/// One line on stderr about what pgx did or is doing, prefixed `pgx: `.
pub fn note(text: &str) {
    eprintln!("pgx: {text}");
}

/// Left-aligned columns, the last one unpadded.
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut text = line(header.to_vec());
    for row in rows {
        text.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    text
}
