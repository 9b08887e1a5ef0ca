//! Database URLs: where the URL comes from, and a type that never shows its password.

use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::project::Project;

/// Where a database URL came from, so every error about it can say which setting to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlSource {
    /// `--database-url`.
    Flag,
    /// An environment variable.
    Environment(String),
    /// An entry of the project's `.env` file.
    DotEnv { name: String, file: PathBuf },
    /// The project's dev cluster.
    DevCluster,
    /// Made by pgx or a caller from another URL (a test harness, say); nothing to name.
    Given,
}

impl fmt::Display for UrlSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlSource::Flag => f.write_str("--database-url"),
            UrlSource::Environment(name) => write!(f, "{name} in the environment"),
            UrlSource::DotEnv { name, file } => write!(f, "{name} in {}", file.display()),
            UrlSource::DevCluster => f.write_str("the dev cluster"),
            UrlSource::Given => f.write_str("the caller"),
        }
    }
}

/// The database URL, by precedence: `--database-url`, `DATABASE_URL` in the environment,
/// `DATABASE_URL` in `.env`, then the variable `pgx.yaml` names (environment, then `.env`).
pub fn configured(project: &Project, flag: Option<&str>) -> Option<DbUrl> {
    if let Some(url) = flag {
        return Some(DbUrl::from_source(url, UrlSource::Flag));
    }
    let dotenv = project.dotenv();
    let lookup = |name: &str| {
        if let Some(v) = std::env::var(name).ok().filter(|v| !v.is_empty()) {
            return Some(DbUrl::from_source(v, UrlSource::Environment(name.into())));
        }
        dotenv.get(name).filter(|v| !v.is_empty()).map(|v| {
            DbUrl::from_source(
                v.clone(),
                UrlSource::DotEnv {
                    name: name.into(),
                    file: project.dotenv_path(),
                },
            )
        })
    };
    lookup("DATABASE_URL").or_else(|| lookup(&project.config.database_url_env))
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
    source: UrlSource,
}

impl DbUrl {
    pub fn new(raw: impl Into<String>) -> Self {
        DbUrl::from_source(raw, UrlSource::Given)
    }

    pub fn from_source(raw: impl Into<String>, source: UrlSource) -> Self {
        DbUrl {
            raw: raw.into(),
            source,
        }
    }

    /// Where the URL came from.
    pub fn source(&self) -> &UrlSource {
        &self.source
    }

    /// ` (URL from <source>)` for error messages; empty when there is nothing to name.
    pub fn from_where(&self) -> String {
        match self.source {
            UrlSource::Given => String::new(),
            ref s => format!(" (URL from {s})"),
        }
    }

    /// The full URL, password included: only for handing to the driver.
    pub fn expose(&self) -> &str {
        &self.raw
    }

    /// Checks the URL's shape and says in words what is wrong, without showing it (it may hold
    /// a password).
    pub fn check(&self) -> Result<()> {
        let fail = |reason: String| Error::DatabaseUrl {
            reason,
            origin: self.from_where(),
        };
        let url = url::Url::parse(&self.raw).map_err(|e| fail(describe_parse_error(e)))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(fail(format!(
                "it starts with `{}:` instead of postgres:// (e.g. postgres://USER@HOST:5432/DATABASE)",
                url.scheme()
            )));
        }
        Ok(())
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
            reason: describe_parse_error(e),
            origin: self.from_where(),
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
        Ok(DbUrl::from_source(url.to_string(), self.source.clone()))
    }

    /// The same URL with the user replaced (and no password).
    pub fn with_user(&self, user: &str) -> Result<DbUrl> {
        let mut url = url::Url::parse(&self.raw).map_err(|e| Error::DatabaseUrl {
            reason: describe_parse_error(e),
            origin: self.from_where(),
        })?;
        let _ = url.set_password(None);
        url.set_username(&percent_encode(user))
            .map_err(|()| Error::DatabaseUrl {
                reason: "it cannot carry a user name".into(),
                origin: self.from_where(),
            })?;
        Ok(DbUrl::from_source(url.to_string(), self.source.clone()))
    }

    /// Removes every occurrence of the password from `text` (a driver message, say).
    pub fn scrub(&self, text: &str) -> String {
        match self.password() {
            Some(p) if p.len() >= 2 => text.replace(&p, "***"),
            _ => text.to_string(),
        }
    }
}

/// What is wrong with a URL that does not parse, in words.
fn describe_parse_error(e: url::ParseError) -> String {
    use url::ParseError as P;
    match e {
        P::RelativeUrlWithoutBase => {
            "it is not a URL; expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE".into()
        }
        P::InvalidPort => "the port is not a number between 0 and 65535".into(),
        P::EmptyHost => "the host is empty".into(),
        P::InvalidIpv6Address => {
            "the host is not a valid IPv6 address (write it in brackets: [::1])".into()
        }
        P::InvalidIpv4Address => "the host is not a valid IPv4 address".into(),
        P::InvalidDomainCharacter | P::IdnaError => "the host name has invalid characters".into(),
        other => format!("it does not parse as a URL ({other})"),
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
    fn bad_urls_are_described_in_words_naming_their_source() {
        let e = |raw: &str| {
            DbUrl::from_source(raw, UrlSource::Environment("DATABASE_URL".into()))
                .check()
                .unwrap_err()
                .to_string()
        };
        let garbage = e("localhost/db password=hunter2");
        assert!(garbage.contains("it is not a URL"), "{garbage}");
        assert!(
            garbage.contains("DATABASE_URL in the environment"),
            "{garbage}"
        );
        assert!(!garbage.contains("hunter2"), "{garbage}");
        assert!(e("postgres://u:pw@h:notaport/db").contains("the port is not a number"));
        assert!(e("mysql://u@h/db").contains("it starts with `mysql:` instead of postgres://"));
        let flag = DbUrl::from_source("postgres://h/db", UrlSource::Flag);
        assert!(flag.check().is_ok());
        assert_eq!(flag.from_where(), " (URL from --database-url)");
        assert_eq!(DbUrl::new("postgres://h/db").from_where(), "");
    }

    #[test]
    fn database_can_be_swapped() {
        let u = DbUrl::new("postgres://u:p@h:1/a?dbname=zz&sslmode=disable");
        let v = u.with_database("pgx test").unwrap();
        assert_eq!(v.expose(), "postgres://u:p@h:1/pgx%20test?sslmode=disable");
    }
}
