//! Shared infrastructure, versioned like an extension: a pattern that `requires` it finds the
//! installed version in the project's migrations (the header of the migration that installed or
//! last upgraded it), and `pgx new` renders the installing pattern first when there is none.
//! The migrations themselves stay the record: nothing outside the migrations folder says what
//! is installed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::catalog::Catalog;
use super::render::{PARAM, PROVIDES};
use super::spec::{Embedded, Pattern, Resolved};
use crate::error::{Error, Result};

/// Infrastructure found in a migrations folder.
#[derive(Debug, Clone, PartialEq)]
pub struct Installed {
    pub version: u32,
    /// The migration that installed or last upgraded it.
    pub file: PathBuf,
    /// Its resolved parameters, as its header records them.
    pub params: BTreeMap<String, Json>,
}

/// What a header written by `render` says: the pattern, the infrastructure it provides and
/// its parameters.
struct Header {
    pattern: Option<String>,
    provides: Option<(String, u32)>,
    params: BTreeMap<String, Json>,
}

fn read_header(sql: &str) -> Header {
    let mut header = Header {
        pattern: None,
        provides: None,
        params: BTreeMap::new(),
    };
    for line in sql.lines().take_while(|l| l.starts_with("--")) {
        if let Some(rest) = line.strip_prefix(PROVIDES) {
            let (name, version) = rest.rsplit_once(' ').unwrap_or((rest, ""));
            if let (Ok(Json::String(name)), Ok(version)) =
                (serde_json::from_str::<Json>(name), version.parse())
            {
                header.provides = Some((name, version));
            }
        } else if let Some((k, v)) = line.strip_prefix(PARAM).and_then(|r| r.split_once(" = "))
            && let Ok(v) = serde_json::from_str(v)
        {
            header.params.insert(k.to_string(), v);
        } else if line.starts_with("-- pgx ")
            && let Some((_, rest)) = line.split_once(": pattern ")
            && let Some((name, _)) = rest.rsplit_once(' ')
            && let Ok(Json::String(name)) = serde_json::from_str::<Json>(name)
        {
            header.pattern = Some(name);
        }
    }
    header
}

/// The newest installation of `name` among `files` (up files as `(version, path, sql)`): the
/// highest version provided, and of those the latest migration.
pub fn installed(name: &str, files: &[(i64, PathBuf, String)]) -> Option<Installed> {
    installed_or_embedded(name, files, None)
}

/// As `installed`, and without any, the latest migration of the `embedded` form, if any, as the
/// version it embeds.
pub fn installed_or_embedded(
    name: &str,
    files: &[(i64, PathBuf, String)],
    embedded: Option<&Embedded>,
) -> Option<Installed> {
    let mut best: Option<(u32, i64, Installed)> = None;
    let mut legacy: Option<(i64, Installed)> = None;
    for (migration, path, sql) in files {
        let header = read_header(sql);
        let Some((n, version)) = header.provides else {
            if let (Some(e), Some(p)) = (embedded, &header.pattern)
                && *p == e.pattern
                && legacy.as_ref().is_none_or(|(m, _)| *migration > *m)
            {
                legacy = Some((
                    *migration,
                    Installed {
                        version: e.version,
                        file: path.clone(),
                        params: header.params,
                    },
                ));
            }
            continue;
        };
        if n != name {
            continue;
        }
        if best
            .as_ref()
            .is_none_or(|(v, m, _)| (version, *migration) > (*v, *m))
        {
            best = Some((
                version,
                *migration,
                Installed {
                    version,
                    file: path.clone(),
                    params: header.params,
                },
            ));
        }
    }
    best.map(|(_, _, i)| i).or(legacy.map(|(_, i)| i))
}

/// What `pgx new` renders: the installing pattern first when the infrastructure is missing,
/// then the pattern asked for.
#[derive(Debug)]
pub struct Plan<'c> {
    pub install: Option<(&'c Pattern, Resolved)>,
    pub resolved: Resolved,
}

/// Resolves `pattern`'s parameters against what the migrations in `dir` (given as `files`)
/// already installed. Shared parameters come from the installed infrastructure; setting one to
/// another value is refused, since one installation cannot serve two settings.
pub fn plan<'c>(
    catalog: &'c Catalog,
    pattern: &'c Pattern,
    sets: &[(String, String)],
    dir: &Path,
    files: &[(i64, PathBuf, String)],
) -> Result<Plan<'c>> {
    let mut resolved = pattern.resolve(sets)?;
    let Some(req) = &pattern.requires else {
        return Ok(Plan {
            install: None,
            resolved,
        });
    };
    // A pattern that requires the infrastructure it provides upgrades it.
    let upgrades = pattern.provides.as_ref().filter(|p| p.name == req.name);
    let Some(found) = installed_or_embedded(&req.name, files, req.embedded.as_ref()) else {
        if upgrades.is_some() {
            return Err(Error::PatternUsage {
                pattern: pattern.name.clone(),
                message: format!(
                    "there is no {} infrastructure in {} to upgrade: install it with `pgx new {}`",
                    req.name,
                    dir.display(),
                    req.install
                ),
            });
        }
        let install = catalog.get(&req.install)?;
        let shared: Vec<(String, String)> = sets
            .iter()
            .filter(|(k, _)| req.shared.contains(k))
            .cloned()
            .collect();
        let install_resolved = install.resolve(&shared)?;
        for (k, v) in &mut resolved {
            if let Some((_, iv)) = install_resolved.iter().find(|(ik, _)| ik == k)
                && req.shared.contains(k)
            {
                v.clone_from(iv);
            }
        }
        return Ok(Plan {
            install: Some((install, install_resolved)),
            resolved,
        });
    };
    if let Some(p) = upgrades
        && found.version >= p.version
    {
        return Err(Error::PatternUsage {
            pattern: pattern.name.clone(),
            message: format!(
                "{} is at version {} already ({}): there is nothing to upgrade",
                req.name,
                found.version,
                found.file.display()
            ),
        });
    }
    if found.version < req.version {
        let how = req.upgrade.as_ref().map_or_else(
            || "upgrade it first".to_string(),
            |u| format!("generate the upgrade first with `pgx new {u}`"),
        );
        return Err(Error::PatternUsage {
            pattern: pattern.name.clone(),
            message: format!(
                "needs {} version {} or later, and the newest in {} is version {} ({}): {how}",
                req.name,
                req.version,
                dir.display(),
                found.version,
                found.file.display()
            ),
        });
    }
    for (k, v) in &mut resolved {
        let Some(installed) = found.params.get(k).filter(|_| req.shared.contains(k)) else {
            continue;
        };
        let given = sets.iter().any(|(sk, _)| sk == k);
        if given && v != installed {
            return Err(Error::PatternUsage {
                pattern: pattern.name.clone(),
                message: format!(
                    "parameter `{k}` belongs to the installed {} ({}), where it is {installed}; drop --set {k}=... or change the installation with an upgrade migration",
                    req.name,
                    found.file.display()
                ),
            });
        }
        v.clone_from(installed);
    }
    Ok(Plan {
        install: None,
        resolved,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_installation_wins() {
        let file = |provides: &str, schema: &str| {
            format!(
                "-- pgx 0.1.0: pattern \"x\" (up)\n{PROVIDES}{provides}\n-- schema: \"public\"\n{PARAM}audit_schema = \"{schema}\"\n\nSELECT 1;\n-- pgx provides: \"fake\" 9\n"
            )
        };
        let files = vec![
            (1, PathBuf::from("1.up.sql"), file("\"audit\" 1", "a")),
            (2, PathBuf::from("2.up.sql"), file("\"audit\" 2", "b")),
            (3, PathBuf::from("3.up.sql"), file("\"other\" 7", "c")),
            (4, PathBuf::from("4.up.sql"), "SELECT 1;\n".to_string()),
        ];
        let found = installed("audit", &files).unwrap();
        assert_eq!(found.version, 2);
        assert_eq!(found.file, PathBuf::from("2.up.sql"));
        assert_eq!(found.params["audit_schema"], Json::from("b"));
        assert_eq!(installed("fake", &files), None, "only the header counts");
        assert_eq!(installed("none", &files), None);
    }

    #[test]
    fn an_older_form_embedding_the_infrastructure_counts_as_its_version() {
        let file = |pattern: &str, schema: &str| {
            format!(
                "-- pgx 0.1.0: pattern \"{pattern}\" (up)\n-- table: \"public\".\"t\"\n{PARAM}audit_schema = \"{schema}\"\n\nSELECT 1;\n"
            )
        };
        let embedded = Embedded {
            pattern: "audit".into(),
            version: 1,
        };
        let files = vec![
            (1, PathBuf::from("1.up.sql"), file("audit", "a")),
            (2, PathBuf::from("2.up.sql"), file("audit", "b")),
            (3, PathBuf::from("3.up.sql"), file("other", "c")),
        ];
        let found = installed_or_embedded("audit", &files, Some(&embedded)).unwrap();
        assert_eq!(
            (found.version, found.params["audit_schema"].clone()),
            (1, Json::from("b"))
        );
        assert_eq!(installed("audit", &files), None);
        let mut with_install = files.clone();
        with_install.push((
            0,
            PathBuf::from("0.up.sql"),
            format!(
                "-- pgx 0.1.0: pattern \"audit_install\" (up)\n{PROVIDES}\"audit\" 2\n\nSELECT 1;\n"
            ),
        ));
        assert_eq!(
            installed_or_embedded("audit", &with_install, Some(&embedded)).map(|i| i.version),
            Some(2),
            "a header saying more wins"
        );
    }
}
