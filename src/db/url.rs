//! Database URLs: where the URL comes from, and a type that never shows its password.

use std::fmt;

use crate::error::{Error, Result};
use crate::project::Project;

/// The database URL, by precedence: `--database-url`, `DATABASE_URL` in the environment,
/// `DATABASE_URL` in `.env`, then the variable `pgx.yaml` names (environment, then `.env`).
pub fn configured(project: &Project, flag: Option<&str>) -> Option<DbUrl> {
    if let Some(url) = flag {
        return Some(DbUrl::new(url));
    }
    let dotenv = project.dotenv();
    let lookup = |name: &str| {
        std::env::var(name)
            .ok()
            .or_else(|| dotenv.get(name).cloned())
            .filter(|v| !v.is_empty())
    };
    lookup("DATABASE_URL")
        .or_else(|| lookup(&project.config.database_url_env))
        .map(DbUrl::new)
}

/// [`configured`], or an error saying where pgx looked.
pub fn require(project: &Project, flag: Option<&str>) -> Result<DbUrl> {
    configured(project, flag).ok_or_else(|| Error::NoDatabaseUrl {
        env: if project.config.database_url_env == "DATABASE_URL" {
            "DATABASE_URL".into()
        } else {
            format!("DATABASE_URL or {}", project.config.database_url_env)
        },
    })
}

/// A database URL that never shows its password: `Display` and `Debug` print it redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct DbUrl {
    raw: String,
}

impl DbUrl {
    pub fn new(raw: impl Into<String>) -> Self {
        DbUrl { raw: raw.into() }
    }

    /// The full URL, password included: only for handing to the driver.
    pub fn expose(&self) -> &str {
        &self.raw
    }

    /// The password, if the URL carries one (in the user-info part or as `?password=`).
    pub fn password(&self) -> Option<String> {
        let url = url::Url::parse(&self.raw).ok()?;
        let from_query = url
            .query_pairs()
            .find(|(k, _)| k == "password")
            .map(|(_, v)| v.into_owned());
        url.password()
            .map(percent_decode)
            .or(from_query)
            .filter(|p| !p.is_empty())
    }

    /// The same URL with the database name replaced.
    pub fn with_database(&self, db: &str) -> Result<DbUrl> {
        let mut url = url::Url::parse(&self.raw).map_err(|e| Error::DatabaseUrl {
            reason: e.to_string(),
        })?;
        url.set_path(&format!("/{}", percent_encode(db)));
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "dbname")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if pairs.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        Ok(DbUrl::new(url.to_string()))
    }

    /// Removes every occurrence of the password from `text` (a driver message, say).
    pub fn scrub(&self, text: &str) -> String {
        match self.password() {
            Some(p) if p.len() >= 2 => text.replace(&p, "***"),
            _ => text.to_string(),
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes everything but URL-unreserved characters (for a URL's host or path part).
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match url::Url::parse(&self.raw) {
            Ok(mut url) => {
                if url.password().is_some() {
                    let _ = url.set_password(Some("***"));
                }
                let pairs: Vec<(String, String)> = url
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if k == "password" {
                            "***".into()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                if !pairs.is_empty() {
                    url.query_pairs_mut().clear().extend_pairs(pairs);
                }
                write!(f, "{url}")
            }
            // Not a URL we can take apart: showing it could show the password.
            Err(_) => f.write_str("<unparsable database URL>"),
        }
    }
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DbUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_never_show_passwords() {
        let u = DbUrl::new("postgres://app:s3cr%40t@db.example:6432/prod?sslmode=require");
        assert_eq!(
            u.to_string(),
            "postgres://app:***@db.example:6432/prod?sslmode=require"
        );
        assert_eq!(u.password().as_deref(), Some("s3cr@t"));
        assert!(!format!("{u:?}").contains("s3cr"));
        let q = DbUrl::new("postgres://app@h/db?password=hunter2&application_name=x");
        assert!(!q.to_string().contains("hunter2"), "{q}");
        assert_eq!(q.scrub("failed for hunter2"), "failed for ***");
        assert_eq!(
            DbUrl::new("not a url :pw@").to_string(),
            "<unparsable database URL>"
        );
    }

    #[test]
    fn database_can_be_swapped() {
        let u = DbUrl::new("postgres://u:p@h:1/a?dbname=zz&sslmode=disable");
        let v = u.with_database("pgx test").unwrap();
        assert_eq!(v.expose(), "postgres://u:p@h:1/pgx%20test?sslmode=disable");
    }
}
