//! Splitting SQL files into the statements psql would send one by one.

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
