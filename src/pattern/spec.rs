//! A pattern's spec (`patterns/<name>.yaml`): its parameters, templates and example, parsed and
//! validated with every error naming `file:line:column`, and `--set` values resolved against it.
//! (Over 500 lines because the spec's types and their located validation belong together.)

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::catalog::{Origin, TemplateSource};
use super::infer::{self, Infer};
use super::params::{self, ParamType};
use crate::error::{Error, Result, closest};
use crate::yaml::{self, Locator, Seg};

/// What a pattern applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// `pgx new PATTERN TABLE`.
    #[default]
    Table,
    /// `pgx new PATTERN` (no table; e.g. shared infrastructure).
    None,
}

/// Whether the rendered migration must run outside a transaction: always, never, or when a
/// boolean parameter is true (e.g. `concurrently`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum NoTransaction {
    Always(bool),
    WhenParameter(String),
}

impl Default for NoTransaction {
    fn default() -> Self {
        NoTransaction::Always(false)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Templates {
    pub up: String,
    pub down: String,
}

/// Inputs for the example rendering `pgx patterns show` prints.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    #[serde(default)]
    pub table: Option<String>,
    #[serde(default)]
    pub schema: Option<String>,
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// What the example needs to exist first (its table, a referenced table), and how to
    /// remove it: shown by `pgx patterns show`, and used by the tests that apply every
    /// built-in pattern's example.
    #[serde(default)]
    pub setup: Option<Setup>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    pub up: String,
    pub down: String,
}

/// Shared infrastructure a pattern installs (or upgrades to a version): schemas, functions and
/// event triggers that many tables' migrations use, versioned like an extension.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Provides {
    pub name: String,
    pub version: u32,
}

/// Shared infrastructure a pattern needs, found in the project's migrations by the header
/// of the migration that installed (or last upgraded) it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Requires {
    /// The infrastructure's name (what the installing pattern `provides`).
    pub name: String,
    /// The lowest installed version this pattern works with.
    pub version: u32,
    /// The pattern `pgx new` renders first when the project has no such infrastructure yet.
    pub install: String,
    /// The pattern that upgrades an older installation (named in the error).
    #[serde(default)]
    pub upgrade: Option<String>,
    /// Parameters of this pattern that belong to the infrastructure: taken from the installed
    /// one, or passed to `install` when it is rendered first.
    #[serde(default)]
    pub shared: Vec<String>,
    /// Migrations of an older form that carried the infrastructure inside them, before it had a
    /// migration of its own: they count as that version installed when no header says more.
    #[serde(default)]
    pub embedded: Option<Embedded>,
}

/// Migrations of `pattern` without a `provides` header embed version `version` of the
/// infrastructure (with the shared parameters their header records).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Embedded {
    pub pattern: String,
    pub version: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: String,
    summary: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    target: Target,
    #[serde(default)]
    no_transaction: NoTransaction,
    #[serde(default)]
    provides: Option<Provides>,
    #[serde(default)]
    requires: Option<Requires>,
    #[serde(default)]
    parameters: Vec<RawParam>,
    templates: Templates,
    #[serde(default)]
    example: Option<Example>,
    #[serde(default)]
    hint: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParam {
    name: String,
    #[serde(rename = "type")]
    ty: ParamType,
    #[serde(default)]
    default: Option<serde_yaml::Value>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    doc: String,
    #[serde(default)]
    values: Vec<String>,
    #[serde(default)]
    min: Option<i64>,
    #[serde(default)]
    max: Option<i64>,
    #[serde(default)]
    sql_type: Option<SqlType>,
    #[serde(default)]
    infer: Option<String>,
}

/// The PostgreSQL type a parameter's value must be a value of (it lands in a column): a type
/// name, or the name of the parameter holding the type (e.g. the tenant column's `type`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum SqlType {
    Named(String),
    Parameter { parameter: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct Param {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ParamType,
    pub default: Option<Json>,
    pub required: bool,
    pub doc: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sql_type: Option<SqlType>,
    /// How `pgx new` chooses the value from the database when it is not set.
    #[serde(skip)]
    pub infer: Option<Infer>,
}

impl Param {
    pub fn expected(&self) -> String {
        let mut s = self.ty.describe(&self.values);
        match (self.min, self.max) {
            (Some(lo), Some(hi)) => s.push_str(&format!(" between {lo} and {hi}")),
            (Some(lo), None) => s.push_str(&format!(" of at least {lo}")),
            (None, Some(hi)) => s.push_str(&format!(" of at most {hi}")),
            (None, None) => {}
        }
        s
    }

    fn parse(&self, text: &str) -> std::result::Result<Json, params::ParseError> {
        let v = params::parse_text(self.ty, text, &self.values)?;
        self.check_range(v)
    }

    fn check_range(&self, v: Json) -> std::result::Result<Json, params::ParseError> {
        if let Some(n) = v.as_i64() {
            let low = self.min.is_some_and(|lo| n < lo);
            let high = self.max.is_some_and(|hi| n > hi);
            if low || high {
                return Err(params::ParseError {
                    reason: Some("out of range".into()),
                });
            }
        }
        Ok(v)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Pattern {
    pub name: String,
    pub summary: String,
    pub description: String,
    pub target: Target,
    pub no_transaction: NoTransaction,
    pub provides: Option<Provides>,
    pub requires: Option<Requires>,
    pub parameters: Vec<Param>,
    pub templates: Templates,
    /// Inputs for `pgx patterns show`; validated at load time when present.
    pub example: Option<Example>,
    /// One line `pgx new` prints after writing the migrations (what to try next).
    pub hint: Option<String>,
    pub origin: Origin,
}

/// Parameters after validation, in the order the spec declares them.
pub type Resolved = Vec<(String, Json)>;

impl Pattern {
    /// Validates `--set` pairs against the spec and fills in defaults.
    pub fn resolve(&self, sets: &[(String, String)]) -> Result<Resolved> {
        let out = self.resolve_types(sets)?;
        self.check_sql_types(&out)?;
        Ok(out)
    }

    /// [`Pattern::resolve`] without checking values against the SQL type they are destined for,
    /// which may depend on a parameter still to be inferred (the tenant column's `type`).
    pub fn resolve_types(&self, sets: &[(String, String)]) -> Result<Resolved> {
        let mut given: BTreeMap<&str, &str> = BTreeMap::new();
        for (key, value) in sets {
            let Some(_) = self.parameters.iter().find(|p| &p.name == key) else {
                let names: Vec<&str> = self.parameters.iter().map(|p| p.name.as_str()).collect();
                return Err(Error::UnknownParameter {
                    pattern: self.name.clone(),
                    key: key.clone(),
                    suggestion: closest(key, names.iter().copied()),
                    valid: names.iter().map(ToString::to_string).collect(),
                });
            };
            if given.insert(key, value).is_some() {
                return Err(Error::Usage(format!(
                    "parameter `{key}` of pattern `{}` is set more than once",
                    self.name
                )));
            }
        }
        let mut out = Vec::with_capacity(self.parameters.len());
        for p in &self.parameters {
            let value = match (given.get(p.name.as_str()), &p.default) {
                (Some(text), _) => p.parse(text).map_err(|e| Error::InvalidParameter {
                    pattern: self.name.clone(),
                    name: p.name.clone(),
                    expected: p.expected(),
                    value: (*text).to_string(),
                    reason: e.reason,
                })?,
                (None, Some(default)) => default.clone(),
                (None, None) if p.required => {
                    return Err(Error::MissingParameter {
                        pattern: self.name.clone(),
                        name: p.name.clone(),
                        expected: p.ty.placeholder().to_string(),
                    });
                }
                (None, None) => Json::Null,
            };
            out.push((p.name.clone(), value));
        }
        Ok(out)
    }

    /// Refuses a value that cannot be one of the SQL type it is destined for.
    fn check_sql_types(&self, resolved: &Resolved) -> Result<()> {
        let value_of = |name: &str| resolved.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        for p in &self.parameters {
            let Some(ty) = &p.sql_type else { continue };
            let Some(Json::String(value)) = value_of(&p.name) else {
                continue;
            };
            let (type_name, why) = match ty {
                SqlType::Named(t) => (t.clone(), String::new()),
                SqlType::Parameter { parameter } => match value_of(parameter) {
                    Some(Json::String(t)) => (t.clone(), format!(" (the `{parameter}` parameter)")),
                    _ => continue,
                },
            };
            if let Err(reason) = crate::sql::value::check(&type_name, value) {
                return Err(Error::InvalidParameter {
                    pattern: self.name.clone(),
                    name: p.name.clone(),
                    expected: format!("a value of type {type_name}{why}"),
                    value: value.clone(),
                    reason: Some(reason),
                });
            }
        }
        Ok(())
    }

    /// Whether a migration rendered with `resolved` must run outside a transaction.
    pub fn runs_outside_transaction(&self, resolved: &Resolved) -> bool {
        match &self.no_transaction {
            NoTransaction::Always(b) => *b,
            NoTransaction::WhenParameter(name) => resolved
                .iter()
                .any(|(k, v)| k == name && v.as_bool() == Some(true)),
        }
    }

    /// `--set` pairs for the spec's example rendering.
    pub fn example_sets(&self) -> Vec<(String, String)> {
        self.example
            .iter()
            .flat_map(|e| e.set.iter())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

fn valid_param_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

pub(super) fn parse_spec(
    path: &Path,
    content: &str,
    templates: &BTreeMap<String, TemplateSource>,
    origin: Origin,
) -> Result<Pattern> {
    let raw: RawSpec = yaml::from_str(path, content)?;
    let loc = Locator::new(path, content);

    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if raw.name != stem {
        return Err(loc.error(
            &[Seg::Key("name")],
            format!(
                "pattern name `{}` must match its file name `{stem}`",
                raw.name
            ),
        ));
    }
    if !valid_param_name(&raw.name.replace('-', "_")) {
        return Err(loc.error(
            &[Seg::Key("name")],
            "pattern names are lower case letters, digits, `_` and `-`, starting with a letter",
        ));
    }
    if raw.summary.trim().is_empty() || raw.summary.contains('\n') {
        return Err(loc.error(&[Seg::Key("summary")], "summary must be one non-empty line"));
    }

    let mut parameters: Vec<Param> = Vec::with_capacity(raw.parameters.len());
    for (i, rp) in raw.parameters.into_iter().enumerate() {
        let at = |key: &'static str| [Seg::Key("parameters"), Seg::Index(i), Seg::Key(key)];
        if !valid_param_name(&rp.name) {
            return Err(loc.error(
                &at("name"),
                format!(
                    "parameter name `{}` must be lower case letters, digits and `_`, starting with a letter",
                    rp.name
                ),
            ));
        }
        if parameters.iter().any(|p| p.name == rp.name) {
            return Err(loc.error(
                &at("name"),
                format!("parameter `{}` is declared twice", rp.name),
            ));
        }
        match (rp.ty, rp.values.is_empty()) {
            (ParamType::Enum, true) => {
                return Err(loc.error(&at("type"), "an enum parameter needs `values`"));
            }
            (ParamType::Enum, false) => {}
            (_, false) => {
                return Err(loc.error(&at("values"), "`values` only applies to enum parameters"));
            }
            (_, true) => {}
        }
        if (rp.min.is_some() || rp.max.is_some()) && rp.ty != ParamType::Integer {
            return Err(loc.error(
                &at("min"),
                "`min` and `max` only apply to integer parameters",
            ));
        }
        if rp.required && rp.default.is_some() {
            return Err(loc.error(&at("default"), "a required parameter cannot have a default"));
        }
        let mut param = Param {
            name: rp.name,
            ty: rp.ty,
            default: None,
            required: rp.required,
            doc: rp.doc,
            values: rp.values,
            min: rp.min,
            max: rp.max,
            sql_type: rp.sql_type,
            infer: None,
        };
        if let Some(query) = rp.infer {
            param.infer =
                Some(Infer::new(&query).map_err(|e| {
                    loc.error(&at("infer"), format!("infer of `{}`: {e}", param.name))
                })?);
        }
        if let Some(d) = &rp.default {
            let parsed = params::parse_yaml(param.ty, d, &param.values)
                .and_then(|v| param.check_range(v))
                .map_err(|e| {
                    let mut msg =
                        format!("default of `{}` must be {}", param.name, param.expected());
                    if let Some(r) = e.reason {
                        msg.push_str(&format!(" ({r})"));
                    }
                    loc.error(&at("default"), msg)
                })?;
            param.default = Some(parsed);
        }
        parameters.push(param);
    }

    for (i, p) in parameters.iter().enumerate() {
        let at = |key: &'static str| [Seg::Key("parameters"), Seg::Index(i), Seg::Key(key)];
        if let Some(SqlType::Parameter { parameter }) = &p.sql_type
            && !parameters.iter().any(|q| &q.name == parameter)
        {
            return Err(loc.error(
                &at("sql_type"),
                format!("sql_type names `{parameter}`, which is not a parameter of this pattern"),
            ));
        }
        if let Some(inf) = &p.infer {
            let names: Vec<&str> = parameters.iter().map(|q| q.name.as_str()).collect();
            infer::check_placeholders(inf, &names, raw.target)
                .map_err(|e| loc.error(&at("infer"), format!("infer of `{}`: {e}", p.name)))?;
        }
    }

    if let Some(hint) = &raw.hint
        && (hint.trim().is_empty() || hint.trim().contains('\n'))
    {
        return Err(loc.error(&[Seg::Key("hint")], "hint must be one non-empty line"));
    }

    if let NoTransaction::WhenParameter(name) = &raw.no_transaction {
        let ok = parameters
            .iter()
            .any(|p| &p.name == name && p.ty == ParamType::Boolean);
        if !ok {
            return Err(loc.error(
                &[Seg::Key("no_transaction")],
                format!("no_transaction must be true, false, or the name of a boolean parameter; `{name}` is not one"),
            ));
        }
    }

    if let Some(p) = &raw.provides
        && !valid_param_name(&p.name)
    {
        return Err(loc.error(
            &[Seg::Key("provides"), Seg::Key("name")],
            "infrastructure names are lower case letters, digits and `_`, starting with a letter",
        ));
    }
    if let Some(r) = &raw.requires {
        for (i, name) in r.shared.iter().enumerate() {
            if !parameters.iter().any(|p| &p.name == name) {
                return Err(loc.error(
                    &[Seg::Key("requires"), Seg::Key("shared"), Seg::Index(i)],
                    format!("shared parameter `{name}` is not a parameter of this pattern"),
                ));
            }
        }
    }

    for (key, name) in [("up", &raw.templates.up), ("down", &raw.templates.down)] {
        if !templates.contains_key(name) {
            let suggestion = closest(name, templates.keys().map(String::as_str))
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            return Err(loc.error(
                &[Seg::Key("templates"), Seg::Key(key)],
                format!("template `{name}` not found in the project's templates or the built-in ones{suggestion}"),
            ));
        }
    }

    let pattern = Pattern {
        name: raw.name,
        summary: raw.summary,
        description: raw.description,
        target: raw.target,
        no_transaction: raw.no_transaction,
        provides: raw.provides,
        requires: raw.requires,
        parameters,
        templates: raw.templates,
        example: raw.example,
        hint: raw.hint.map(|h| h.trim().to_string()),
        origin,
    };
    let Some(example) = &pattern.example else {
        return Ok(pattern);
    };
    if let Err(e) = pattern.resolve(&pattern.example_sets()) {
        return Err(loc.error(&[Seg::Key("example")], format!("example: {e}")));
    }
    if pattern.target == Target::Table && example.table.is_none() {
        return Err(loc.error(
            &[Seg::Key("example")],
            "example.table is required for a pattern that targets a table",
        ));
    }
    Ok(pattern)
}
