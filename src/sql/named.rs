//! Named placeholders (`$table`, `$column`) in a query written by hand, turned into PostgreSQL's
//! positional ones (`$1`, `$2`) so that every value is bound as a parameter and none is ever
//! spliced into the SQL text. Placeholders inside string literals, quoted identifiers, comments
//! and dollar-quoted strings are left alone.

/// A query with its named placeholders replaced by `$1`, `$2`, ...; `names[i]` is bound to
/// `$(i+1)` (a name used twice is bound once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Positional {
    pub sql: String,
    pub names: Vec<String>,
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_lowercase() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
}

/// Rewrites `sql`; refuses positional placeholders (`$1`) and unterminated quotes.
pub fn positional(sql: &str) -> Result<Positional, String> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len());
    let mut names: Vec<String> = Vec::new();
    let mut i = 0;
    // Copies chars[i..end] and moves past them.
    let copy = |out: &mut String, i: &mut usize, end: usize| {
        out.extend(&chars[*i..end]);
        *i = end;
    };
    let find = |from: usize, needle: &[char]| {
        (from..=chars.len().saturating_sub(needle.len())).find(|&j| chars[j..].starts_with(needle))
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '\'' | '"' => {
                // A doubled quote is an escaped quote inside the same literal.
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return Err(format!("unterminated {c} quote")),
                        Some(&q) if q == c && chars.get(j + 1) == Some(&c) => j += 2,
                        Some(&q) if q == c => break,
                        Some(_) => j += 1,
                    }
                }
                copy(&mut out, &mut i, j + 1);
            }
            '-' if next == Some('-') => {
                let end = find(i, &['\n']).map_or(chars.len(), |j| j + 1);
                copy(&mut out, &mut i, end);
            }
            '/' if next == Some('*') => {
                let end = find(i + 2, &['*', '/']).ok_or("unterminated /* comment")? + 2;
                copy(&mut out, &mut i, end);
            }
            '$' if next.is_some_and(|n| n.is_ascii_digit()) => {
                return Err(
                    "positional placeholders ($1) are not allowed; use named ones ($table)".into(),
                );
            }
            '$' if next.is_some_and(is_name_start) => {
                let mut j = i + 1;
                while chars.get(j).copied().is_some_and(is_name_char) {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                if chars.get(j) == Some(&'$') {
                    // A dollar-quoted string `$tag$ ... $tag$`.
                    let tag: Vec<char> = chars[i..=j].to_vec();
                    let end = find(j + 1, &tag)
                        .ok_or_else(|| format!("unterminated ${name}$ quote"))?
                        + tag.len();
                    copy(&mut out, &mut i, end);
                    continue;
                }
                let n = match names.iter().position(|x| *x == name) {
                    Some(p) => p + 1,
                    None => {
                        names.push(name);
                        names.len()
                    }
                };
                out.push_str(&format!("${n}"));
                i = j;
            }
            '$' if next == Some('$') => {
                let end = find(i + 2, &['$', '$']).ok_or("unterminated $$ quote")? + 2;
                copy(&mut out, &mut i, end);
            }
            _ => {
                let end = i + 1;
                copy(&mut out, &mut i, end);
            }
        }
    }
    Ok(Positional { sql: out, names })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_positions_outside_quotes_and_comments() {
        let p = positional(
            "SELECT $column, 'x$column', \"$column\", $$ $table $$, $q$ $table $q$ -- $table\n\
             FROM t WHERE a = $table::regclass /* $schema */ AND b = $column",
        )
        .unwrap();
        assert_eq!(
            p.sql,
            "SELECT $1, 'x$column', \"$column\", $$ $table $$, $q$ $table $q$ -- $table\n\
             FROM t WHERE a = $2::regclass /* $schema */ AND b = $1"
        );
        assert_eq!(p.names, ["column", "table"]);
        assert_eq!(
            positional("SELECT 'it''s $x'").unwrap().names,
            Vec::<String>::new()
        );
        assert!(positional("SELECT $1").is_err());
        assert!(positional("SELECT 'open").is_err());
        assert!(positional("SELECT $a$ open").is_err());
    }
}
