//! The SQL filters every pgx template renders with, and the one Tera environment they live in.
//!
//! Escaping is on for every template and the escape function refuses to print: any
//! `{{ value }}` that did not go through a quoting filter (`ident`, `ident_list`, `qualified`,
//! `literal`, `literal_list`) fails the render instead of splicing user text into SQL. Numbers
//! and booleans print as themselves (they cannot inject anything), and the `safe` filter is
//! disabled, so a template cannot opt out by accident.

use std::io;

use heck::{
    ToKebabCase, ToLowerCamelCase, ToShoutySnakeCase, ToSnakeCase, ToTitleCase, ToUpperCamelCase,
};
use tera::{Kwargs, State, Tera, TeraResult, Value};

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

#[cfg(test)]
mod tests {
    use super::*;
    use tera::{Context, ErrorKind};

    fn render(tpl: &str, ctx: &Context) -> Result<String, tera::Error> {
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
    fn derived_name_needs_ident() {
        let out = render("{{ name | derived_name(suffix='_trg') | ident }}", &ctx()).unwrap();
        assert_eq!(out, "\"Order Items_trg\"");
        assert!(render("{{ name | derived_name(suffix='_trg') }}", &ctx()).is_err());
    }
}
