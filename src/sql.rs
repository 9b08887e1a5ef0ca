//! Quoting of identifiers and literals, and splitting SQL files into statements.
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

/// One statement of a SQL file, with where it starts so errors can name the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement<'a> {
    /// The statement text, from its first token to its terminating semicolon (if any).
    pub text: &'a str,
    /// Byte offset of `text` in the file.
    pub offset: usize,
    /// 1-based line of the statement's first token.
    pub line: usize,
}

impl Statement<'_> {
    /// The 1-based line in the file of the `char_position`-th character (1-based, as PostgreSQL
    /// reports error positions) of this statement.
    pub fn line_of_char(&self, char_position: usize) -> usize {
        let newlines = self
            .text
            .chars()
            .take(char_position.saturating_sub(1))
            .filter(|&c| c == '\n')
            .count();
        self.line + newlines
    }
}

/// The number of lines in `text` (a last line without a newline counts).
pub fn line_count(text: &str) -> usize {
    text.lines().count().max(1)
}

/// Splits a SQL script into the statements psql would send one by one.
///
/// Semicolons inside string literals (including `E''` escapes), quoted identifiers, dollar
/// quotes, comments (nested block comments included), parentheses and SQL-standard function
/// bodies (`BEGIN ATOMIC ... END`) do not end a statement. Pieces holding only whitespace and
/// comments are dropped.
pub fn split_statements(sql: &str) -> Vec<Statement<'_>> {
    Splitter::new(sql).run()
}

struct Splitter<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: usize,
}

/// What the splitter tracks about the statement it is inside, to recognise
/// `CREATE [OR REPLACE] FUNCTION|PROCEDURE ... BEGIN ATOMIC ... END`.
#[derive(Default)]
struct StatementState {
    start: Option<(usize, usize)>,
    paren_depth: usize,
    begin_depth: usize,
    leading_words: Vec<String>,
    words_seen: usize,
}

impl StatementState {
    fn is_routine_definition(&self) -> bool {
        let w: Vec<&str> = self.leading_words.iter().map(String::as_str).collect();
        matches!(
            w.as_slice(),
            ["create", "function" | "procedure", ..]
                | ["create", "or", "replace", "function" | "procedure", ..]
        )
    }

    fn word(&mut self, word: &str) {
        let lower = word.to_ascii_lowercase();
        if self.words_seen < 4 {
            self.leading_words.push(lower.clone());
        }
        self.words_seen += 1;
        if self.paren_depth == 0 && self.is_routine_definition() {
            match lower.as_str() {
                "begin" => self.begin_depth += 1,
                // CASE also closes with END, but only matters inside a BEGIN ATOMIC body.
                "case" if self.begin_depth > 0 => self.begin_depth += 1,
                "end" if self.begin_depth > 0 => self.begin_depth -= 1,
                _ => {}
            }
        }
    }
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_continue(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

impl<'a> Splitter<'a> {
    fn new(src: &'a str) -> Self {
        Splitter {
            src,
            bytes: src.as_bytes(),
            pos: 0,
            line: 1,
        }
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos + ahead).copied()
    }

    fn advance(&mut self, n: usize) {
        for _ in 0..n {
            if self.pos >= self.bytes.len() {
                return;
            }
            if self.bytes[self.pos] == b'\n' {
                self.line += 1;
            }
            self.pos += 1;
        }
    }

    fn advance_to(&mut self, end: usize) {
        let end = end.min(self.bytes.len());
        self.line += self.bytes[self.pos..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.pos = end;
    }

    fn run(mut self) -> Vec<Statement<'a>> {
        let mut out = Vec::new();
        let mut st = StatementState::default();
        while let Some(b) = self.peek(0) {
            match b {
                b'-' if self.peek(1) == Some(b'-') => {
                    let end = self.src[self.pos..]
                        .find('\n')
                        .map_or(self.bytes.len(), |i| self.pos + i);
                    self.advance_to(end);
                }
                b'/' if self.peek(1) == Some(b'*') => self.skip_block_comment(),
                b if b.is_ascii_whitespace() => self.advance(1),
                b';' if st.paren_depth == 0 && st.begin_depth == 0 => {
                    self.advance(1);
                    if let Some((offset, line)) = st.start {
                        out.push(Statement {
                            text: &self.src[offset..self.pos],
                            offset,
                            line,
                        });
                    }
                    st = StatementState::default();
                }
                _ => {
                    if st.start.is_none() {
                        st.start = Some((self.pos, self.line));
                    }
                    self.token(&mut st);
                }
            }
        }
        if let Some((offset, line)) = st.start {
            out.push(Statement {
                text: self.src[offset..].trim_end(),
                offset,
                line,
            });
        }
        out
    }

    fn skip_block_comment(&mut self) {
        let mut depth = 0usize;
        while self.pos < self.bytes.len() {
            if self.peek(0) == Some(b'/') && self.peek(1) == Some(b'*') {
                depth += 1;
                self.advance(2);
            } else if self.peek(0) == Some(b'*') && self.peek(1) == Some(b'/') {
                depth -= 1;
                self.advance(2);
                if depth == 0 {
                    return;
                }
            } else {
                self.advance(1);
            }
        }
    }

    /// Consumes one token that is not whitespace, a comment or a top-level semicolon.
    fn token(&mut self, st: &mut StatementState) {
        let b = self.bytes[self.pos];
        match b {
            b'\'' => self.skip_string(false),
            b'"' => self.skip_quoted_ident(),
            b'$' => {
                if let Some(tag_len) = self.dollar_tag_len() {
                    self.skip_dollar_quoted(tag_len);
                } else {
                    self.advance(1);
                }
            }
            b'(' => {
                st.paren_depth += 1;
                self.advance(1);
            }
            b')' => {
                st.paren_depth = st.paren_depth.saturating_sub(1);
                self.advance(1);
            }
            b if is_ident_start(b) => {
                let start = self.pos;
                while self.peek(0).is_some_and(is_ident_continue) {
                    self.advance(1);
                }
                let word = &self.src[start..self.pos];
                // E'...' and U&'...' style prefixes glue onto the literal that follows.
                if self.peek(0) == Some(b'\'') {
                    let escapes = word.eq_ignore_ascii_case("e");
                    self.skip_string(escapes);
                } else if word.eq_ignore_ascii_case("u")
                    && self.peek(0) == Some(b'&')
                    && matches!(self.peek(1), Some(b'\'' | b'"'))
                {
                    self.advance(1);
                    if self.peek(0) == Some(b'"') {
                        self.skip_quoted_ident();
                    } else {
                        self.skip_string(false);
                    }
                } else {
                    st.word(word);
                }
            }
            b if b.is_ascii_digit() => {
                while self
                    .peek(0)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
                {
                    self.advance(1);
                }
            }
            _ => self.advance(1),
        }
    }

    fn skip_string(&mut self, backslash_escapes: bool) {
        self.advance(1);
        while let Some(b) = self.peek(0) {
            match b {
                b'\\' if backslash_escapes => self.advance(2),
                b'\'' if self.peek(1) == Some(b'\'') => self.advance(2),
                b'\'' => {
                    self.advance(1);
                    return;
                }
                _ => self.advance(1),
            }
        }
    }

    fn skip_quoted_ident(&mut self) {
        self.advance(1);
        while let Some(b) = self.peek(0) {
            if b == b'"' {
                if self.peek(1) == Some(b'"') {
                    self.advance(2);
                } else {
                    self.advance(1);
                    return;
                }
            } else {
                self.advance(1);
            }
        }
    }

    /// Length of a `$tag$` opening delimiter at the cursor, if there is one. `$1` (a parameter)
    /// is not one; `$` inside a word never reaches here because words swallow it.
    fn dollar_tag_len(&self) -> Option<usize> {
        let rest = &self.bytes[self.pos + 1..];
        if rest.first() == Some(&b'$') {
            return Some(2);
        }
        let first = *rest.first()?;
        if !is_ident_start(first) {
            return None;
        }
        let mut i = 1;
        while i < rest.len() && (is_ident_start(rest[i]) || rest[i].is_ascii_digit()) {
            i += 1;
        }
        (rest.get(i) == Some(&b'$')).then_some(i + 2)
    }

    fn skip_dollar_quoted(&mut self, tag_len: usize) {
        let tag = &self.src[self.pos..self.pos + tag_len];
        let body_start = self.pos + tag_len;
        let end = self.src[body_start..]
            .find(tag)
            .map_or(self.bytes.len(), |i| body_start + i + tag_len);
        self.advance_to(end);
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

    fn texts(sql: &str) -> Vec<&str> {
        split_statements(sql).into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn splits_on_top_level_semicolons_only() {
        let sql = "-- header; not a statement\ncreate table a (x text default ';');\n\
                   /* c; /* nested; */ still; */ insert into a values (E'\\';'), ('it''s;');\n\
                   create function f() returns text language sql as $fn$ select ';' $fn$;\n\
                   select $$;$$, \"we;ird\", 1;\n-- trailing comment only\n";
        assert_eq!(
            texts(sql),
            [
                "create table a (x text default ';');",
                "insert into a values (E'\\';'), ('it''s;');",
                "create function f() returns text language sql as $fn$ select ';' $fn$;",
                "select $$;$$, \"we;ird\", 1;",
            ]
        );
    }

    #[test]
    fn keeps_begin_atomic_bodies_whole() {
        let sql = "CREATE OR REPLACE FUNCTION f(x int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  \
                   SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;\n  SELECT 2;\nEND;\nselect 3";
        let got = texts(sql);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].ends_with("END;"));
        assert_eq!(got[1], "select 3");
        // An ordinary transaction block is not a routine body.
        assert_eq!(texts("begin; select 1; end;").len(), 3);
    }

    #[test]
    fn statements_know_their_lines() {
        let sql = "\n\n-- c\nselect 1;\n\nselect\n  2\n  from nowhere;";
        let stmts = split_statements(sql);
        assert_eq!(stmts[0].line, 4);
        assert_eq!(stmts[1].line, 6);
        // Character 13 of the second statement ("from") is on its third line.
        assert_eq!(stmts[1].line_of_char(13), 8);
        assert_eq!(&sql[stmts[1].offset..stmts[1].offset + 6], "select");
    }

    #[test]
    fn parameters_and_dollar_in_words_are_not_quotes() {
        assert_eq!(
            texts("select $1; select a$b; select 2"),
            ["select $1;", "select a$b;", "select 2"]
        );
    }
}
