//! Rendering a pattern into the SQL of a migration pair: parameters and table into a Tera
//! context, the pattern's templates rendered with pgx's SQL filters (see `filters`), and a
//! header naming the pattern and its resolved parameters.

use std::collections::BTreeMap;

use serde_json::Value as Json;
use tera::{Context, ErrorKind, Tera};

use super::catalog::Catalog;
use super::filters::tera_factory;
use super::infer::Inferred;
use super::spec::{Pattern, Resolved, Target};
use crate::error::{Error, Result};
use crate::sql;

/// Renders the catalog's templates.
pub struct Renderer {
    tera: Tera,
    display: BTreeMap<String, String>,
}

impl Renderer {
    pub fn new(catalog: &Catalog) -> Result<Renderer> {
        let mut tera = tera_factory();
        let display: BTreeMap<String, String> = catalog
            .templates()
            .iter()
            .map(|(name, source)| (name.clone(), source.display_path(name)))
            .collect();
        // One batch: Tera checks references (`include`, `extends`) when a batch is added, so
        // templates added one by one could not refer to ones added after them.
        tera.add_raw_templates(
            catalog
                .templates()
                .iter()
                .map(|(name, source)| (name.as_str(), source.content.as_str())),
        )
        .map_err(|e| template_error(&display, "templates", &e))?;
        Ok(Renderer { tera, display })
    }

    pub fn render(&self, template: &str, context: &Context) -> Result<String> {
        self.tera
            .render(template, context)
            .map_err(|e| template_error(&self.display, template, &e))
    }
}

/// Turns a Tera error into `template:line:column: message` on one line, naming the template
/// the error is in (an included one, say), as the user's project or pgx's sources has it.
fn template_error(display: &BTreeMap<String, String>, rendering: &str, err: &tera::Error) -> Error {
    let shown = |name: &str| {
        display
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_string())
    };
    match err.kind() {
        ErrorKind::SyntaxError(report) | ErrorKind::RenderingError(report) => {
            let span = report.span();
            let file = if report.filename().is_empty() {
                rendering
            } else {
                report.filename()
            };
            Error::Template {
                template: shown(file),
                line: span.start_line,
                column: span.start_col + 1,
                message: crate::error::one_line(report.message()),
            }
        }
        ErrorKind::Io(_) => Error::Render {
            message: format!(
                "{}: a value was printed without a SQL quoting filter; pass it through `ident`, `qualified` or `literal`",
                shown(rendering)
            ),
        },
        _ => Error::Render {
            message: format!(
                "{}: {}",
                shown(rendering),
                crate::error::one_line(&err.to_string())
            ),
        },
    }
}

/// The table a pattern is applied to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    pub schema: String,
    pub name: String,
}

/// A rendered pattern: one or more migrations, applied in this order (and reverted in the
/// reverse order).
#[derive(Debug, Clone)]
pub struct Rendered {
    pub steps: Vec<Step>,
}

/// One migration of a rendered pattern: both halves of it.
#[derive(Debug, Clone)]
pub struct Step {
    /// The step's name (from its `-- pgx:step NAME` marker), appended to the description of its
    /// files; `None` for a pattern rendered as one migration.
    pub name: Option<String>,
    pub up: String,
    pub down: String,
    pub no_transaction: bool,
}

impl Rendered {
    /// Every step's up file, in order (for reading; a single step is its file exactly).
    pub fn up(&self) -> String {
        self.steps.iter().map(|s| s.up.as_str()).collect()
    }

    /// Every step's down file, in step order.
    pub fn down(&self) -> String {
        self.steps.iter().map(|s| s.down.as_str()).collect()
    }

    /// Whether any step runs outside a transaction.
    pub fn no_transaction(&self) -> bool {
        self.steps.iter().any(|s| s.no_transaction)
    }
}

/// The line that starts a step in a rendered template: `-- pgx:step NAME [no-transaction]`.
const STEP_MARKER: &str = "-- pgx:step ";

/// A step as its marker declares it, with the text that follows the marker.
struct Piece<'a> {
    name: &'a str,
    no_transaction: bool,
    body: String,
}

/// Splits a rendered template at its step markers. `Ok(None)`: no marker, one migration.
fn pieces<'a>(template: &str, text: &'a str) -> Result<Option<Vec<Piece<'a>>>> {
    let mut out: Vec<Piece<'a>> = Vec::new();
    let mut before = String::new();
    for line in text.split_inclusive('\n') {
        let Some(rest) = line.trim().strip_prefix(STEP_MARKER.trim_end()) else {
            match out.last_mut() {
                Some(piece) => piece.body.push_str(line),
                None => before.push_str(line),
            }
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        let bad = || Error::Render {
            message: format!(
                "{template}: a step marker must read `-- pgx:step NAME` or `-- pgx:step NAME no-transaction` (NAME: lower-case letters, digits, `_`); got {:?}",
                line.trim()
            ),
        };
        let (name, no_transaction) = match words.as_slice() {
            [name] => (*name, false),
            [name, "no-transaction"] => (*name, true),
            _ => return Err(bad()),
        };
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(bad());
        }
        if out.iter().any(|p| p.name == name) {
            return Err(Error::Render {
                message: format!("{template}: step `{name}` is declared twice"),
            });
        }
        out.push(Piece {
            name,
            no_transaction,
            body: String::new(),
        });
    }
    if out.is_empty() {
        return Ok(None);
    }
    if !before.trim().is_empty() {
        return Err(Error::Render {
            message: format!(
                "{template}: text before the first `-- pgx:step` marker belongs to no migration; start the template with a marker"
            ),
        });
    }
    Ok(Some(out))
}

/// Renders `pattern` for `table` (required when the pattern targets a table) in `schema`.
pub fn render_pattern(
    renderer: &Renderer,
    pattern: &Pattern,
    schema: &str,
    table: Option<&str>,
    resolved: &Resolved,
) -> Result<Rendered> {
    render_pattern_in(renderer, pattern, Some(schema), table, resolved)
}

/// [`render_pattern`], where `schema: None` renders for tenant schemas: `table.schema` and
/// `schema` are null, so names stay unqualified and resolve in the schema each tenant's
/// migrations run in.
pub fn render_pattern_in(
    renderer: &Renderer,
    pattern: &Pattern,
    schema: Option<&str>,
    table: Option<&str>,
    resolved: &Resolved,
) -> Result<Rendered> {
    render_recording(renderer, pattern, schema, table, resolved, &[])
}

/// [`render_pattern_in`], with the choices `pgx new` inferred from the database recorded in
/// each file's header (so review shows them).
pub fn render_recording(
    renderer: &Renderer,
    pattern: &Pattern,
    schema: Option<&str>,
    table: Option<&str>,
    resolved: &Resolved,
    inferred: &[Inferred],
) -> Result<Rendered> {
    if let Some(schema) = schema {
        sql::check_ident(schema).map_err(|reason| Error::Identifier {
            what: "schema".into(),
            name: schema.into(),
            reason,
        })?;
    }
    let table = match (pattern.target, table) {
        (Target::Table, Some(t)) => {
            sql::check_ident(t).map_err(|reason| Error::Identifier {
                what: "table".into(),
                name: t.into(),
                reason,
            })?;
            Some(TableRef {
                schema: schema.unwrap_or_default().to_string(),
                name: t.to_string(),
            })
        }
        (Target::Table, None) => {
            return Err(Error::PatternUsage {
                pattern: pattern.name.clone(),
                message: "needs a table: pgx new PATTERN TABLE".into(),
            });
        }
        (Target::None, Some(t)) => {
            return Err(Error::PatternUsage {
                pattern: pattern.name.clone(),
                message: format!("does not apply to a table; drop the `{t}` argument"),
            });
        }
        (Target::None, None) => None,
    };

    let no_transaction = pattern.runs_outside_transaction(resolved);
    let params: serde_json::Map<String, Json> = resolved.iter().cloned().collect();
    let mut ctx = Context::new();
    ctx.insert("pattern", &pattern.name);
    ctx.insert("schema", &schema);
    ctx.insert("params", &params);
    ctx.insert("no_transaction", &no_transaction);
    if let Some(t) = &table {
        ctx.insert(
            "table",
            &serde_json::json!({ "schema": schema, "name": t.name }),
        );
    }

    let up = renderer.render(&pattern.templates.up, &ctx)?;
    let down = renderer.render(&pattern.templates.down, &ctx)?;
    let (up_name, down_name) = (&pattern.templates.up, &pattern.templates.down);
    let file = |direction: &str, step: Option<(usize, usize, &str)>, nt: bool, body: &str| {
        let info = Info {
            pattern,
            schema,
            table: table.as_ref(),
            resolved,
            inferred,
            no_transaction: nt,
            step,
        };
        format!("{}{}", header(&info, direction), tidy(body))
    };
    let steps = match (pieces(up_name, &up)?, pieces(down_name, &down)?) {
        (None, None) => {
            if no_transaction {
                single_statement(up_name, None, &up, 1..=1)?;
                single_statement(down_name, None, &down, 0..=1)?;
            }
            vec![Step {
                name: None,
                up: file("up", None, no_transaction, &up),
                down: file("down", None, no_transaction, &down),
                no_transaction,
            }]
        }
        (Some(ups), Some(downs)) => {
            let shape = |ps: &[Piece<'_>]| -> Vec<(String, bool)> {
                ps.iter()
                    .map(|p| (p.name.to_string(), p.no_transaction))
                    .collect()
            };
            if shape(&ups) != shape(&downs) {
                return Err(Error::Render {
                    message: format!(
                        "{up_name} and {down_name} must declare the same steps in the same order (each down step reverses its up step): up has {:?}, down has {:?}",
                        shape(&ups),
                        shape(&downs)
                    ),
                });
            }
            let total = ups
                .iter()
                .zip(&downs)
                .filter(|(u, d)| !(u.body.trim().is_empty() && d.body.trim().is_empty()))
                .count();
            let mut steps = Vec::with_capacity(total);
            for (u, d) in ups.iter().zip(&downs) {
                // A step whose condition left both halves empty does not exist in this rendering.
                if u.body.trim().is_empty() && d.body.trim().is_empty() {
                    continue;
                }
                let at = Some((steps.len() + 1, total, u.name));
                if u.no_transaction {
                    single_statement(up_name, Some(u.name), &u.body, 1..=1)?;
                    single_statement(down_name, Some(d.name), &d.body, 0..=1)?;
                }
                steps.push(Step {
                    name: Some(u.name.to_string()),
                    up: file("up", at, u.no_transaction, &u.body),
                    down: file("down", at, d.no_transaction, &d.body),
                    no_transaction: u.no_transaction,
                });
            }
            steps
        }
        _ => {
            return Err(Error::Render {
                message: format!(
                    "{up_name} and {down_name}: either both or neither use `-- pgx:step` markers"
                ),
            });
        }
    };
    if steps.is_empty() {
        return Err(Error::Render {
            message: format!("{up_name}: every step rendered empty; nothing to migrate"),
        });
    }
    Ok(Rendered { steps })
}

/// sqlx sends a `-- no-transaction` file as one query, which PostgreSQL runs as an implicit
/// transaction: a second statement (or one that refuses to run in a transaction block next to
/// another) makes it fail. Such a file, a step's or a whole pattern's, holds one statement;
/// several need steps (`-- pgx:step NAME no-transaction`), one each.
fn single_statement(
    template: &str,
    step: Option<&str>,
    body: &str,
    allowed: std::ops::RangeInclusive<usize>,
) -> Result<()> {
    let n = sql::split_statements(body).len();
    if allowed.contains(&n) {
        return Ok(());
    }
    let what = match step {
        Some(step) => format!("no-transaction step `{step}`"),
        None => "a no-transaction migration".to_string(),
    };
    Err(Error::Render {
        message: format!(
            "{template}: {what} renders {n} statements; it must hold {} (sqlx-cli sends such a file as one query, which PostgreSQL runs as one transaction; split it into steps with `-- pgx:step NAME no-transaction`, one statement each)",
            if *allowed.start() == 0 {
                "at most one"
            } else {
                "exactly one"
            }
        ),
    })
}

/// What a file's header says.
struct Info<'a> {
    pattern: &'a Pattern,
    schema: Option<&'a str>,
    table: Option<&'a TableRef>,
    resolved: &'a Resolved,
    inferred: &'a [Inferred],
    no_transaction: bool,
    /// Step number, total and name, for a pattern rendered as several migrations.
    step: Option<(usize, usize, &'a str)>,
}

/// The comment block that opens each file. Values are JSON-encoded: JSON escapes newlines, so
/// no parameter can end the `--` comment and smuggle SQL onto the next line.
fn header(info: &Info<'_>, direction: &str) -> String {
    let js = |s: &str| Json::from(s).to_string();
    let mut h = String::new();
    if info.no_transaction {
        // sqlx looks for this marker at the very start of the file.
        h.push_str("-- no-transaction\n");
    }
    h.push_str(&format!(
        "-- pgx {}: pattern {} ({direction})\n",
        env!("CARGO_PKG_VERSION"),
        js(&info.pattern.name)
    ));
    if let Some((i, n, name)) = info.step {
        h.push_str(&format!("-- step {i} of {n}: {}\n", js(name)));
    }
    if let Some(p) = &info.pattern.provides {
        h.push_str(&format!("{PROVIDES}{} {}\n", js(&p.name), p.version));
    }
    match (info.table, info.schema) {
        (Some(t), Some(_)) => h.push_str(&format!("-- table: {}.{}\n", js(&t.schema), js(&t.name))),
        (None, Some(s)) => h.push_str(&format!("-- schema: {}\n", js(s))),
        (Some(t), None) => h.push_str(&format!(
            "-- table: {} in each tenant schema\n",
            js(&t.name)
        )),
        (None, None) => h.push_str("-- schema: each tenant schema\n"),
    }
    for (k, v) in info.resolved {
        h.push_str(&format!("{PARAM}{k} = {v}\n"));
    }
    for i in info.inferred {
        match i.header_value(info.resolved) {
            Some(v) => h.push_str(&format!(
                "{INFERRED}{} = {v}: {}\n",
                i.parameter,
                js(&i.message)
            )),
            None => h.push_str(&format!("-- note: {}\n", js(&i.message))),
        }
    }
    if info.no_transaction {
        h.push_str("-- Runs outside a transaction: each statement commits on its own.\n");
    }
    h.push('\n');
    h
}

/// The header line saying which shared infrastructure (name, version) a migration installs.
pub(super) const PROVIDES: &str = "-- pgx provides: ";
/// The header line recording one resolved parameter (`name = JSON value`).
pub(super) const PARAM: &str = "-- param ";
/// The header line recording a value `pgx new` inferred from the database, and why.
pub const INFERRED: &str = "-- inferred ";

/// Normalises only the ends of the rendered text (no leading blank lines, exactly one final
/// newline). Nothing in between is touched: it may be inside a string literal whose value a
/// parameter chose.
fn tidy(sql: &str) -> String {
    let start = sql
        .char_indices()
        .find(|&(_, c)| !c.is_whitespace())
        .map_or(sql.len(), |(i, _)| {
            sql[..i].rfind('\n').map_or(0, |nl| nl + 1)
        });
    let mut out = sql[start..].trim_end().to_string();
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::filters::tera_factory;

    #[test]
    fn bad_identifiers_report_the_template_position() {
        let mut c = Context::new();
        c.insert("long", &"x".repeat(64));
        let mut tera = tera_factory();
        tera.add_raw_template("t.sql", "select 1;\nselect {{ long | ident }};")
            .unwrap();
        let err = tera.render("t.sql", &c).unwrap_err();
        let display = BTreeMap::from([("t.sql".to_string(), "templates/t.sql".to_string())]);
        let e = template_error(&display, "t.sql", &err);
        let text = e.to_string();
        assert!(text.starts_with("templates/t.sql:2:"), "{text}");
        assert!(text.contains("63"), "{text}");
    }

    #[test]
    fn tidy_only_touches_the_ends() {
        assert_eq!(tidy("\n  \n  a\n\n\n\nb  \n\n"), "  a\n\n\n\nb\n");
    }
}
