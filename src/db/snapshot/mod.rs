//! A catalog snapshot: every user-visible object of a database as readable `kind name` →
//! definition pairs, so two snapshots can be compared and their differences listed by name.
//! OIDs never appear (they change when an object is dropped and created again); the
//! `_sqlx_migrations` history table is left out (it changes with every migration).
//!
//! `Snapshot::take` reads everything; a `Tracker` keeps one up to date after each change by
//! re-reading only the objects whose catalog rows changed (and those naming them), which is
//! what lets `pgx check` prove a long history in linear time.

mod parts;
mod tracker;

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use sqlx::Row;
use sqlx::postgres::PgConnection;

use crate::error::{Error, Result};

pub use tracker::Tracker;

/// Objects by `kind name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub objects: BTreeMap<String, String>,
}

/// One object that differs between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub object: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// One readable line per object: what is left over, missing, or differs (showing only the
/// part of the two definitions that changed).
impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.before, &self.after) {
            (None, Some(_)) => write!(f, "{} is left over", self.object),
            (Some(_), None) => write!(f, "{} is missing", self.object),
            (Some(b), Some(a)) => {
                let (b, a) = changed_part(b, a);
                write!(f, "{} differs: should be «{b}», is «{a}»", self.object)
            }
            (None, None) => write!(f, "{}", self.object),
        }
    }
}

/// Words of `before` and `after` without what they share at both ends, with a little context:
/// a function body or a relation's column list then reads as the part that changed.
fn changed_part(before: &str, after: &str) -> (String, String) {
    const CONTEXT: usize = 2;
    let b: Vec<&str> = before.split_whitespace().collect();
    let a: Vec<&str> = after.split_whitespace().collect();
    let prefix = b.iter().zip(&a).take_while(|(x, y)| x == y).count();
    let max_suffix = b.len().min(a.len()) - prefix;
    let suffix = b
        .iter()
        .rev()
        .zip(a.iter().rev())
        .take(max_suffix)
        .take_while(|(x, y)| x == y)
        .count();
    let show = |words: &[&str]| {
        let start = prefix.saturating_sub(CONTEXT);
        let end = (words.len() - suffix + CONTEXT).min(words.len());
        format!(
            "{}{}{}",
            if start > 0 { "… " } else { "" },
            words[start..end].join(" "),
            if end < words.len() { " …" } else { "" }
        )
    };
    (show(&b), show(&a))
}

/// Rows of `(key, value, group)` from `sql`, binding `groups` as `$1` when given.
async fn read(
    conn: &mut PgConnection,
    sql: &str,
    groups: Option<&[i64]>,
) -> Result<Vec<(String, String, i64)>> {
    let failed = |e: sqlx::Error| Error::database("cannot snapshot the schema", &e);
    let query = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
    let query = match groups {
        Some(g) => query.bind(g.to_vec()),
        None => query,
    };
    let rows = query.fetch_all(conn).await.map_err(failed)?;
    rows.iter()
        .map(|row| {
            let value: Option<String> = row.try_get(1)?;
            Ok((row.try_get(0)?, value.unwrap_or_default(), row.try_get(2)?))
        })
        .collect::<std::result::Result<_, sqlx::Error>>()
        .map_err(failed)
}

/// Every part, whole (`filtered`: only the groups `$1`).
fn all_parts(filtered: bool) -> String {
    parts::parts()
        .iter()
        .map(|p| {
            if filtered {
                format!("(SELECT * FROM ({p}) p(k, v, g) WHERE g = ANY ($1::int8[]))")
            } else {
                format!("({p})")
            }
        })
        .collect::<Vec<_>>()
        .join("\nUNION ALL\n")
}

impl Snapshot {
    pub async fn take(conn: &mut PgConnection) -> Result<Snapshot> {
        let objects = read(conn, &all_parts(false), None)
            .await?
            .into_iter()
            .map(|(k, v, _)| (k, v))
            .collect();
        Ok(Snapshot { objects })
    }

    /// What changed from `self` to `after`, by object name.
    pub fn diff(&self, after: &Snapshot) -> Vec<Difference> {
        let mut keys: Vec<&String> = self.objects.keys().chain(after.objects.keys()).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .filter_map(|k| {
                let (b, a) = (self.objects.get(k), after.objects.get(k));
                (b != a).then(|| Difference {
                    object: k.clone(),
                    before: b.cloned(),
                    after: a.cloned(),
                })
            })
            .collect()
    }

    /// Makes the changes `changes` (from a `Tracker`'s `refresh`) on `self`.
    pub fn apply(&mut self, changes: &[Difference]) {
        for c in changes {
            self.set(&c.object, c.after.as_ref());
        }
    }

    /// Undoes the changes `changes` on `self`.
    pub fn unapply(&mut self, changes: &[Difference]) {
        for c in changes {
            self.set(&c.object, c.before.as_ref());
        }
    }

    fn set(&mut self, key: &str, value: Option<&String>) {
        match value {
            Some(v) => self.objects.insert(key.to_string(), v.clone()),
            None => self.objects.remove(key),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differing_definitions_show_the_part_that_changed() {
        let (b, a) = changed_part(
            "kind r owner me acl - persistence p columns (id, item)",
            "kind r owner me acl - persistence p columns (id, item, note)",
        );
        assert_eq!(b, "… columns (id, item)");
        assert_eq!(a, "… columns (id, item, note)");
        let (b, a) = changed_part("text not null default ''::text", "text");
        assert_eq!(
            (b.as_str(), a.as_str()),
            ("text not null default ''::text", "text")
        );
        let (b, a) = changed_part("a b c", "a b c d");
        assert_eq!((b.as_str(), a.as_str()), ("… b c", "… b c d"));
    }
}
