//! Rendering a pattern into the SQL of a migration pair: parameters and table into a Tera
//! context, the pattern's templates rendered with pgx's SQL filters (see `filters`), and a
//! header naming the pattern and its resolved parameters.

use std::collections::BTreeMap;

use serde_json::Value as Json;
use tera::{Context, ErrorKind, Tera};

use super::catalog::Catalog;
use super::filters::tera_factory;
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

/// A rendered pattern: both halves of a migration.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub up: String,
    pub down: String,
    pub no_transaction: bool,
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

    let header = |direction: &str| {
        header(
            pattern,
            direction,
            schema,
            table.as_ref(),
            resolved,
            no_transaction,
        )
    };
    let up = renderer.render(&pattern.templates.up, &ctx)?;
    let down = renderer.render(&pattern.templates.down, &ctx)?;
    Ok(Rendered {
        up: format!("{}{}", header("up"), tidy(&up)),
        down: format!("{}{}", header("down"), tidy(&down)),
        no_transaction,
    })
}

/// The comment block that opens each file. Values are JSON-encoded: JSON escapes newlines, so
/// no parameter can end the `--` comment and smuggle SQL onto the next line.
fn header(
    pattern: &Pattern,
    direction: &str,
    schema: Option<&str>,
    table: Option<&TableRef>,
    resolved: &Resolved,
    no_transaction: bool,
) -> String {
    let js = |s: &str| Json::from(s).to_string();
    let mut h = String::new();
    if no_transaction {
        // sqlx looks for this marker at the very start of the file.
        h.push_str("-- no-transaction\n");
    }
    h.push_str(&format!(
        "-- pgx {}: pattern {} ({direction})\n",
        env!("CARGO_PKG_VERSION"),
        js(&pattern.name)
    ));
    match (table, schema) {
        (Some(t), Some(_)) => h.push_str(&format!("-- table: {}.{}\n", js(&t.schema), js(&t.name))),
        (None, Some(s)) => h.push_str(&format!("-- schema: {}\n", js(s))),
        (Some(t), None) => h.push_str(&format!(
            "-- table: {} in each tenant schema\n",
            js(&t.name)
        )),
        (None, None) => h.push_str("-- schema: each tenant schema\n"),
    }
    for (k, v) in resolved {
        h.push_str(&format!("-- param {k} = {v}\n"));
    }
    if no_transaction {
        h.push_str("-- Runs outside a transaction: each statement commits on its own.\n");
    }
    h.push('\n');
    h
}

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
