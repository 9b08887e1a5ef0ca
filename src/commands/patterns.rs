//! `pgx patterns` and `pgx patterns show NAME`: the catalog, and one pattern documented with an
//! example rendering.

use serde_json::json;

use crate::cli::{PatternsArgs, PatternsCommand};
use crate::error::Result;
use crate::output;
use crate::pattern::{Catalog, Origin, Pattern, Renderer, Sources, Target, params, render_pattern};
use crate::project::Project;

fn origin_json(origin: &Origin) -> serde_json::Value {
    match origin {
        Origin::BuiltIn => json!({ "kind": "built-in" }),
        Origin::Project {
            path,
            overrides_builtin,
        } => json!({ "kind": "project", "path": path, "overrides_builtin": overrides_builtin }),
    }
}

pub fn run(project: &Project, args: &PatternsArgs) -> Result<()> {
    let catalog = Catalog::load(&Sources::of(project))?;
    match &args.command {
        None if args.json.json => output::json(&json!(
            catalog
                .patterns()
                .map(|p| json!({ "name": p.name, "origin": origin_json(&p.origin), "summary": p.summary }))
                .collect::<Vec<_>>()
        )),
        None => {
            let rows: Vec<[String; 3]> = catalog
                .patterns()
                .map(|p| [p.name.clone(), p.origin.label(), p.summary.clone()])
                .collect();
            output::out(&output::table(&["PATTERN", "ORIGIN", "SUMMARY"], &rows))
        }
        Some(PatternsCommand::Show { name, json }) => show_pattern(
            project,
            &catalog,
            catalog.get(name)?,
            args.json.json || json.json,
        ),
    }
}

fn show_pattern(project: &Project, catalog: &Catalog, p: &Pattern, as_json: bool) -> Result<()> {
    // Without an example in the spec, try the defaults on a table named `orders`; a pattern
    // with required parameters then has no example to show.
    let sets = p.example_sets();
    let example = p.example.clone().unwrap_or_default();
    let schema = example.schema.as_deref().unwrap_or(&project.config.schema);
    let table_name = match p.target {
        Target::Table => Some(example.table.as_deref().unwrap_or("orders")),
        Target::None => None,
    };
    let rendered = match (p.resolve(&sets), &p.example) {
        (Ok(resolved), _) => Some(render_pattern(
            &Renderer::new(catalog)?,
            p,
            schema,
            table_name,
            &resolved,
        )?),
        (Err(e), Some(_)) => return Err(e),
        (Err(_), None) => None,
    };
    let mut command = format!("pgx new {}", p.name);
    if let Some(t) = table_name {
        command.push_str(&format!(" {t}"));
    }
    for (k, v) in &sets {
        command.push_str(&format!(" --set {k}={v}"));
    }
    if as_json {
        return output::json(&json!({
            "name": p.name,
            "summary": p.summary,
            "description": p.description,
            "origin": origin_json(&p.origin),
            "target": p.target,
            "parameters": p.parameters.iter().map(|param| json!({
                "name": param.name,
                "type": param.ty,
                "expected": param.expected(),
                "default": param.default,
                "required": param.required,
                "inferred": param.infer.is_some(),
                "doc": param.doc,
            })).collect::<Vec<_>>(),
            "example": rendered.as_ref().map(|r| json!({
                "command": command, "up": r.up(), "down": r.down(), "no_transaction": r.no_transaction(),
                "steps": r.steps.iter().map(|s| json!({
                    "name": s.name, "up": s.up, "down": s.down, "no_transaction": s.no_transaction,
                })).collect::<Vec<_>>(),
                "setup": p.example.as_ref().and_then(|e| e.setup.as_ref()),
            })),
        }));
    }
    let mut text = format!("{} ({})\n  {}\n", p.name, p.origin.label(), p.summary);
    if !p.description.trim().is_empty() {
        text.push('\n');
        for line in p.description.trim_end().lines() {
            text.push_str(&format!("  {line}\n").replace("  \n", "\n"));
        }
    }
    text.push_str("\nParameters:\n");
    if p.parameters.is_empty() {
        text.push_str("  (none)\n");
    }
    for param in &p.parameters {
        // An empty default (an empty list) reads as "optional": `default: ` with nothing
        // after it looks like a bug.
        let mut default = match (&param.default, param.required) {
            (_, true) => "required".to_string(),
            (Some(d), _) if !params::to_text(d).is_empty() => {
                format!("default: {}", params::to_text(d))
            }
            (_, false) => "optional".to_string(),
        };
        if param.infer.is_some() {
            default.push_str("; inferred from the table when a database is reachable");
        }
        text.push_str(&format!(
            "  {:<20} {}; {default}\n",
            param.name,
            param.expected()
        ));
        if !param.doc.is_empty() {
            text.push_str(&format!("  {:<20} {}\n", "", param.doc));
        }
    }
    if let Some(r) = rendered {
        text.push_str(&format!("\nExample: {command}\n"));
        if let Some(setup) = p.example.as_ref().and_then(|e| e.setup.as_ref()) {
            text.push_str("\nGiven:\n");
            for line in setup.up.trim_end().lines() {
                text.push_str(&format!("  {line}\n"));
            }
        }
        for step in &r.steps {
            let label = step
                .name
                .as_ref()
                .map(|n| format!(" (step {n})"))
                .unwrap_or_default();
            text.push_str(&format!(
                "\n-- up{label}\n{}\n-- down{label}\n{}",
                step.up, step.down
            ));
        }
    }
    output::out(&text)
}
