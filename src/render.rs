//! Rendering patterns into SQL with Tera.
//!
//! Every template is rendered with escaping on, and the escape function refuses to print: any
//! `{{ value }}` that did not go through a quoting filter (`ident`, `ident_list`, `qualified`,
//! `literal`, `literal_list`) fails the render instead of splicing user text into SQL. Numbers
//! and booleans print as themselves (they cannot inject anything), and the `safe` filter is
//! disabled, so a template cannot opt out by accident.

use std::collections::BTreeMap;
use std::io;

use heck::{
    ToKebabCase, ToLowerCamelCase, ToShoutySnakeCase, ToSnakeCase, ToTitleCase, ToUpperCamelCase,
};
use serde_json::Value as Json;
use tera::{Context, ErrorKind, Kwargs, State, Tera, TeraResult, Value};

use crate::catalog::{Catalog, Pattern, Resolved, Target};
use crate::error::{Error, Result};
use crate::sql;

const UNQUOTED: &str = "pgx: value printed without a SQL quoting filter";

fn refuse_unquoted(_: &str, _: &mut dyn io::Write) -> io::Result<()> {
    Err(io::Error::other(UNQUOTED))
}

fn key<'a>(map: &'a tera::Map, k: &'a str) -> Option<&'a Value> {
    map.get(&tera::value::Key::Str(k))
}

fn filter_err(filter: &str, msg: impl std::fmt::Display) -> tera::Error {
    tera::Error::message(format!("`{filter}`: {msg}"))
}

fn ident_of(filter: &str, v: &Value) -> TeraResult<String> {
    let name = v.as_str().ok_or_else(|| {
        filter_err(
            filter,
            format!("expected a name (string), got {}", v.name()),
        )
    })?;
    sql::quote_ident(name)
        .map(std::borrow::Cow::into_owned)
        .map_err(|e| filter_err(filter, format!("{name:?}: {e}")))
}

fn literal_of(filter: &str, v: &Value) -> TeraResult<String> {
    let text = match v.as_str() {
        Some(s) => s.to_string(),
        None if v.is_number() || v.is_bool() => v.to_string(),
        None => {
            return Err(filter_err(
                filter,
                format!("cannot quote {} as a literal", v.name()),
            ));
        }
    };
    sql::quote_literal(&text).map_err(|e| filter_err(filter, e))
}

fn array_of<'a>(filter: &str, v: &'a Value) -> TeraResult<&'a [Value]> {
    v.as_array()
        .ok_or_else(|| filter_err(filter, format!("expected a list, got {}", v.name())))
}

/// `{{ name | ident }}`: a quoted identifier.
fn ident(v: &Value, _: Kwargs, _: &State) -> TeraResult<Value> {
    Ok(Value::safe_string(&ident_of("ident", v)?))
}

/// `{{ names | ident_list }}`: `a, "B", c`.
fn ident_list(v: &Value, _: Kwargs, _: &State) -> TeraResult<Value> {
    let parts = array_of("ident_list", v)?
        .iter()
        .map(|i| ident_of("ident_list", i))
        .collect::<TeraResult<Vec<_>>>()?;
    Ok(Value::safe_string(&parts.join(", ")))
}

/// `{{ table | qualified }}` for `{schema, name}` (or `{schema, table}`) maps, `[schema, name]`
/// lists, or `{{ name | qualified(schema=s) }}`. A null schema leaves the name unqualified.
fn qualified(v: &Value, kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    let (schema, name) = if let Some(map) = v.as_map() {
        let name = key(map, "name").or_else(|| key(map, "table"));
        (key(map, "schema").cloned(), name.cloned())
    } else if let Some([schema, name]) = v.as_array() {
        (Some(schema.clone()), Some(name.clone()))
    } else if v.is_string() {
        (kwargs.get::<Value>("schema")?, Some(v.clone()))
    } else {
        return Err(filter_err(
            "qualified",
            format!("cannot qualify {}", v.name()),
        ));
    };
    let name = name.ok_or_else(|| filter_err("qualified", "no `name` to qualify"))?;
    let name = ident_of("qualified", &name)?;
    Ok(Value::safe_string(
        &match schema.filter(|s| !s.is_none() && !s.is_undefined()) {
            Some(s) => format!("{}.{name}", ident_of("qualified", &s)?),
            None => name,
        },
    ))
}

/// `{{ text | literal }}`: a string literal (numbers and booleans become their text).
fn literal(v: &Value, _: Kwargs, _: &State) -> TeraResult<Value> {
    Ok(Value::safe_string(&literal_of("literal", v)?))
}

/// `{{ texts | literal_list }}`: `'a', 'b'`.
fn literal_list(v: &Value, _: Kwargs, _: &State) -> TeraResult<Value> {
    let parts = array_of("literal_list", v)?
        .iter()
        .map(|i| literal_of("literal_list", i))
        .collect::<TeraResult<Vec<_>>>()?;
    Ok(Value::safe_string(&parts.join(", ")))
}

/// `{{ table.name | derived_name(suffix="_audit") | ident }}`: a name built from another one,
/// shortened with a hash when it would pass 63 bytes. Its output is plain text and still needs
/// `ident`.
fn derived_name(base: &str, kwargs: Kwargs, _: &State) -> TeraResult<String> {
    let prefix = kwargs.get::<&str>("prefix")?.unwrap_or("");
    let suffix = kwargs.get::<&str>("suffix")?.unwrap_or("");
    Ok(sql::derived_name(base, prefix, suffix))
}

/// `{% filter dollar_quote %}...{% endfilter %}`: the body as a dollar-quoted string whose tag
/// does not occur in it. A fixed tag such as `$pgx$` would let a name holding `$pgx$` (legal in
/// a quoted identifier or a literal) end a function body early and run the rest as SQL.
fn dollar_quote(body: &str, _: Kwargs, _: &State) -> Value {
    let tag = (0u32..)
        .map(|i| match i {
            0 => "$pgx$".to_string(),
            i => format!("$pgx{i}$"),
        })
        // The closing tag must be the first occurrence, also where the body's end and the
        // tag meet (a body ending in `$pgx`).
        .find(|tag| format!("{body}{tag}").find(tag.as_str()) == Some(body.len()))
        .expect("some tag is free");
    Value::safe_string(&format!("{tag}{body}{tag}"))
}

fn disabled_safe(_: &Value, _: Kwargs, _: &State) -> TeraResult<Value> {
    Err(tera::Error::message(
        "`safe` is disabled in pgx templates: quote with `ident`, `qualified` or `literal`",
    ))
}

/// The one Tera environment every pgx template renders in.
pub fn tera_factory() -> Tera {
    let mut tera = Tera::new();
    // Escaping stays on for every template (empty suffix matches all names), with the escape
    // function turned into a guard: HTML escaping would be wrong for SQL, raw output unsafe.
    tera.autoescape_on(vec![""]);
    tera.set_escape_fn(refuse_unquoted);
    tera.register_filter("ident", ident);
    tera.register_filter("ident_list", ident_list);
    tera.register_filter("qualified", qualified);
    tera.register_filter("literal", literal);
    tera.register_filter("literal_list", literal_list);
    tera.register_filter("derived_name", derived_name);
    tera.register_filter("dollar_quote", dollar_quote);
    tera.register_filter("safe", disabled_safe);
    tera.register_filter("snake_case", |s: &str, _: Kwargs, _: &State| {
        s.to_snake_case()
    });
    tera.register_filter("kebab_case", |s: &str, _: Kwargs, _: &State| {
        s.to_kebab_case()
    });
    tera.register_filter("camel_case", |s: &str, _: Kwargs, _: &State| {
        s.to_lower_camel_case()
    });
    tera.register_filter("pascal_case", |s: &str, _: Kwargs, _: &State| {
        s.to_upper_camel_case()
    });
    tera.register_filter("shouty_snake_case", |s: &str, _: Kwargs, _: &State| {
        s.to_shouty_snake_case()
    });
    tera.register_filter("title_case", |s: &str, _: Kwargs, _: &State| {
        s.to_title_case()
    });
    tera
}

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

    fn render(tpl: &str, ctx: &Context) -> std::result::Result<String, tera::Error> {
        let mut tera = tera_factory();
        tera.add_raw_template("t", tpl)?;
        tera.render("t", ctx)
    }

    fn ctx() -> Context {
        let mut c = Context::new();
        c.insert("name", "Order Items");
        c.insert("evil", "x'; drop table y; --");
        c.insert("n", &5);
        c.insert(
            "t",
            &serde_json::json!({"schema": "Sales", "name": "orders"}),
        );
        c.insert("cols", &["a", "B"]);
        c
    }

    #[test]
    fn dollar_quote_picks_a_tag_the_body_cannot_end() {
        let q = |name: &str| {
            let mut c = Context::new();
            c.insert("c", name);
            render(
                "{% filter dollar_quote %}NEW.{{ c | ident }} := 1;{% endfilter %}",
                &c,
            )
            .unwrap()
        };
        assert_eq!(q("a"), "$pgx$NEW.a := 1;$pgx$");
        assert_eq!(q("a$pgx$b"), "$pgx1$NEW.\"a$pgx$b\" := 1;$pgx1$");
        assert_eq!(q("$pgx$ $pgx1$"), "$pgx2$NEW.\"$pgx$ $pgx1$\" := 1;$pgx2$");
        // Unquoted values still cannot be printed inside the block.
        let mut c = Context::new();
        c.insert("c", "x");
        assert!(render("{% filter dollar_quote %}{{ c }}{% endfilter %}", &c).is_err());
    }

    #[test]
    fn quoting_filters() {
        let out = render(
            "{{ name | ident }} {{ t | qualified }} {{ evil | literal }} {{ n }} {{ cols | ident_list }} \
             {{ 'x' | qualified(schema='s') }} {{ cols | literal_list }}",
            &ctx(),
        )
        .unwrap();
        assert_eq!(
            out,
            "\"Order Items\" \"Sales\".orders 'x''; drop table y; --' 5 a, \"B\" s.x 'a', 'B'"
        );
    }

    #[test]
    fn unquoted_values_fail_the_render() {
        for tpl in [
            "{{ name }}",
            "{{ evil | upper }}",
            "{{ name | snake_case }}",
            "{{ cols }}",
        ] {
            let err = render(tpl, &ctx()).unwrap_err();
            assert!(matches!(err.kind(), ErrorKind::Io(_)), "{tpl}: {err}");
        }
        let err = render("{{ name | safe }}", &ctx()).unwrap_err();
        assert!(err.to_string().contains("disabled"), "{err}");
    }

    #[test]
    fn case_filters_then_quote() {
        let out = render(
            "{{ name | snake_case | ident }} {{ name | pascal_case | ident }}",
            &ctx(),
        )
        .unwrap();
        assert_eq!(out, "order_items \"OrderItems\"");
    }

    #[test]
    fn bad_identifiers_report_the_template_position() {
        let mut c = ctx();
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
    fn derived_name_needs_ident() {
        let out = render("{{ name | derived_name(suffix='_trg') | ident }}", &ctx()).unwrap();
        assert_eq!(out, "\"Order Items_trg\"");
        assert!(render("{{ name | derived_name(suffix='_trg') }}", &ctx()).is_err());
    }

    #[test]
    fn tidy_only_touches_the_ends() {
        assert_eq!(tidy("\n  \n  a\n\n\n\nb  \n\n"), "  a\n\n\n\nb\n");
    }
}
