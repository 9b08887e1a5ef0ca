//! The pattern catalog: built-in patterns and templates embedded in the binary, plus a project's
//! own `patterns/` and `templates/` folders, which add patterns or override built-ins by name.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::spec::{Pattern, parse_spec};
use crate::error::{Error, Result, closest};
use crate::project::Project;
use crate::yaml::{Locator, Seg};

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin.rs"));
}

/// Where a pattern or template came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Origin {
    BuiltIn,
    Project {
        path: PathBuf,
        /// A built-in of the same name exists and this replaces it.
        overrides_builtin: bool,
    },
}

impl Origin {
    pub fn label(&self) -> String {
        match self {
            Origin::BuiltIn => "built-in".into(),
            Origin::Project {
                path,
                overrides_builtin: true,
            } => format!("{} (overrides built-in)", path.display()),
            Origin::Project { path, .. } => path.display().to_string(),
        }
    }
}

/// One template's source and where it came from.
#[derive(Debug, Clone)]
pub struct TemplateSource {
    pub content: String,
    pub origin: Origin,
}

impl TemplateSource {
    /// How errors name this template: its project path, or its place in pgx's sources.
    pub fn display_path(&self, name: &str) -> String {
        match &self.origin {
            Origin::BuiltIn => format!("<built-in>/templates/{name}"),
            Origin::Project { path, .. } => path.display().to_string(),
        }
    }
}

/// Folders a project may add patterns and templates from.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub patterns_dir: Option<PathBuf>,
    pub templates_dir: Option<PathBuf>,
}

impl Sources {
    /// The project's own folders, next to the built-in catalog.
    pub fn of(project: &Project) -> Sources {
        Sources {
            patterns_dir: Some(project.patterns_dir()),
            templates_dir: Some(project.templates_dir()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Catalog {
    patterns: BTreeMap<String, Pattern>,
    templates: BTreeMap<String, TemplateSource>,
}

impl Catalog {
    pub fn builtin() -> Result<Catalog> {
        Catalog::load(&Sources::default())
    }

    pub fn load(sources: &Sources) -> Result<Catalog> {
        let mut templates = BTreeMap::new();
        for (name, content) in builtin::TEMPLATES {
            templates.insert(
                (*name).to_string(),
                TemplateSource {
                    content: (*content).to_string(),
                    origin: Origin::BuiltIn,
                },
            );
        }
        if let Some(dir) = sources.templates_dir.as_deref().filter(|d| d.is_dir()) {
            let mut files = Vec::new();
            walk(dir, &mut files)?;
            for path in files {
                let rel = path.strip_prefix(dir).unwrap_or(&path);
                let name = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                let content = fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
                let overrides_builtin = templates.contains_key(&name);
                templates.insert(
                    name,
                    TemplateSource {
                        content,
                        origin: Origin::Project {
                            path,
                            overrides_builtin,
                        },
                    },
                );
            }
        }

        let mut specs: Vec<(PathBuf, String, Origin)> = builtin::PATTERNS
            .iter()
            .filter(|(name, _)| is_yaml(Path::new(name)))
            .map(|(name, content)| {
                (
                    Path::new("<built-in>/patterns").join(name),
                    (*content).to_string(),
                    Origin::BuiltIn,
                )
            })
            .collect();
        if let Some(dir) = sources.patterns_dir.as_deref().filter(|d| d.is_dir()) {
            let mut files = Vec::new();
            walk(dir, &mut files)?;
            files.retain(|p| is_yaml(p));
            for path in files {
                let content = fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
                specs.push((
                    path.clone(),
                    content,
                    Origin::Project {
                        path,
                        overrides_builtin: false,
                    },
                ));
            }
        }

        let mut patterns: BTreeMap<String, Pattern> = BTreeMap::new();
        // Where each pattern (as finally chosen) was defined, for errors found across patterns.
        let mut specs_by_name: BTreeMap<String, (PathBuf, String)> = BTreeMap::new();
        for (path, content, mut origin) in specs {
            let pattern = parse_spec(&path, &content, &templates, origin.clone())?;
            if let Some(previous) = patterns.get(&pattern.name) {
                match (&previous.origin, &mut origin) {
                    (
                        Origin::BuiltIn,
                        Origin::Project {
                            overrides_builtin, ..
                        },
                    ) => {
                        *overrides_builtin = true;
                    }
                    (Origin::Project { path: first, .. }, _) => {
                        return Err(Locator::new(&path, &content).error(
                            &[Seg::Key("name")],
                            format!(
                                "pattern `{}` is already defined in {}",
                                pattern.name,
                                first.display()
                            ),
                        ));
                    }
                    _ => {}
                }
            }
            specs_by_name.insert(pattern.name.clone(), (path, content));
            patterns.insert(pattern.name.clone(), Pattern { origin, ..pattern });
        }
        let catalog = Catalog {
            patterns,
            templates,
        };
        catalog.check_requirements(&specs_by_name)?;
        Ok(catalog)
    }

    /// A pattern's `requires` must name an installing pattern that exists, targets no table,
    /// provides that infrastructure, and declares every shared parameter.
    fn check_requirements(&self, specs: &BTreeMap<String, (PathBuf, String)>) -> Result<()> {
        for p in self.patterns.values() {
            let Some(r) = &p.requires else { continue };
            let error = |message: String| match specs.get(&p.name) {
                Some((path, content)) => Locator::new(path, content)
                    .error(&[Seg::Key("requires"), Seg::Key("install")], message),
                None => Error::Config(message),
            };
            let install = self.patterns.get(&r.install).ok_or_else(|| {
                error(format!(
                    "pattern `{}` requires `{}` installed by pattern `{}`, which does not exist",
                    p.name, r.name, r.install
                ))
            })?;
            if install.target != super::spec::Target::None
                || install.provides.as_ref().is_none_or(|x| x.name != r.name)
            {
                return Err(error(format!(
                    "pattern `{}` installs `{}` with pattern `{}`, which must target no table and provide `{}`",
                    p.name, r.name, r.install, r.name
                )));
            }
            for name in &r.shared {
                if !install.parameters.iter().any(|q| &q.name == name) {
                    return Err(error(format!(
                        "shared parameter `{name}` of pattern `{}` is not a parameter of `{}`",
                        p.name, r.install
                    )));
                }
            }
        }
        Ok(())
    }

    pub fn patterns(&self) -> impl Iterator<Item = &Pattern> {
        self.patterns.values()
    }

    pub fn get(&self, name: &str) -> Result<&Pattern> {
        self.patterns
            .get(name)
            .ok_or_else(|| Error::UnknownPattern {
                name: name.to_string(),
                suggestion: closest(name, self.patterns.keys().map(String::as_str)),
                available: self.patterns.keys().cloned().collect(),
            })
    }

    pub fn templates(&self) -> &BTreeMap<String, TemplateSource> {
        &self.templates
    }
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io("read directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read directory", dir, e))?;
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    out.sort();
    Ok(())
}
