//! A snapshot kept up to date cheaply. After a change, a fingerprint of every group's catalog
//! rows (their count and the sum of their `xmin`s, no definitions) says which groups were
//! created, changed or dropped; only those are read again, then the groups whose objects name
//! them (`pg_depend`) when their entries changed, until nothing more changes. Reading every
//! definition after each of n migrations made `pgx check` quadratic; this reads what moved.

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::Row;
use sqlx::postgres::PgConnection;

use super::{Difference, Snapshot, all_parts, parts, read};
use crate::error::{Error, Result};

/// `(row count, sum of xmin)` of a group's catalog rows.
type Token = (i64, i64);

/// A snapshot and the groups its entries came from.
pub struct Tracker {
    snapshot: Snapshot,
    keys: HashMap<i64, Vec<String>>,
    tokens: HashMap<i64, Token>,
    fingerprint_sql: String,
    parts_sql: String,
    dependents_sql: String,
}

/// Rounds of following dependents before giving up on being clever and reading everything
/// (a chain of views each on the last one renamed at once, say).
const MAX_ROUNDS: usize = 8;

impl Tracker {
    /// Reads everything once.
    pub async fn new(conn: &mut PgConnection) -> Result<Tracker> {
        let mut tracker = Tracker {
            snapshot: Snapshot::default(),
            keys: HashMap::new(),
            tokens: HashMap::new(),
            fingerprint_sql: parts::fingerprint(),
            parts_sql: all_parts(true),
            dependents_sql: parts::dependents(),
        };
        tracker.tokens = tracker.fingerprint(conn).await?;
        for (k, v, g) in read(conn, &all_parts(false), None).await? {
            tracker.keys.entry(g).or_default().push(k.clone());
            tracker.snapshot.objects.insert(k, v);
        }
        Ok(tracker)
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Brings the snapshot up to date; returns what changed since the last time, by object.
    pub async fn refresh(&mut self, conn: &mut PgConnection) -> Result<Vec<Difference>> {
        let tokens = self.fingerprint(conn).await?;
        let mut dirty: Vec<i64> = tokens
            .iter()
            .filter(|&(g, t)| self.tokens.get(g) != Some(t))
            .map(|(g, _)| *g)
            .chain(
                self.tokens
                    .keys()
                    .filter(|g| !tokens.contains_key(*g))
                    .copied(),
            )
            .collect();
        self.tokens = tokens;
        // Before and after of every object read again, by key.
        let mut changes: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
        let mut done: HashSet<i64> = HashSet::new();
        let mut rounds = 0;
        while !dirty.is_empty() {
            rounds += 1;
            if rounds > MAX_ROUNDS {
                self.reread_all(conn, &mut changes).await?;
                break;
            }
            done.extend(&dirty);
            let moved = self.reread(conn, &dirty, &mut changes).await?;
            dirty = if moved.is_empty() {
                Vec::new()
            } else {
                self.dependents(conn, &moved)
                    .await?
                    .into_iter()
                    .filter(|g| !done.contains(g))
                    .collect()
            };
        }
        Ok(changes
            .into_iter()
            .filter(|(_, (b, a))| b != a)
            .map(|(object, (before, after))| Difference {
                object,
                before,
                after,
            })
            .collect())
    }

    async fn fingerprint(&self, conn: &mut PgConnection) -> Result<HashMap<i64, Token>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(self.fingerprint_sql.clone()))
            .fetch_all(conn)
            .await
            .map_err(|e| Error::database("cannot fingerprint the schema", &e))?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?))))
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(|e| Error::database("cannot fingerprint the schema", &e))
    }

    /// Reads `groups` again, recording each entry's change in `changes`; returns the groups
    /// whose entries changed in a way objects naming them can show: for a schema, only its
    /// name (granting on a schema changes nothing in the definitions of what it holds).
    async fn reread(
        &mut self,
        conn: &mut PgConnection,
        groups: &[i64],
        changes: &mut BTreeMap<String, (Option<String>, Option<String>)>,
    ) -> Result<Vec<i64>> {
        // Every group's old entries are taken out before any new one goes in: a key may pass
        // from one group to another (a table replaced by a new one of the same name).
        let mut old: HashMap<i64, BTreeMap<String, String>> = HashMap::new();
        for g in groups {
            let entries = old.entry(*g).or_default();
            for k in self.keys.remove(g).unwrap_or_default() {
                if let Some(v) = self.snapshot.objects.remove(&k) {
                    let change = changes.entry(k.clone()).or_insert((Some(v.clone()), None));
                    change.1 = None;
                    entries.insert(k, v);
                }
            }
        }
        let mut new: HashMap<i64, BTreeMap<String, String>> = HashMap::new();
        for (k, v, g) in read(conn, &self.parts_sql, Some(groups)).await? {
            changes.entry(k.clone()).or_insert((None, None)).1 = Some(v.clone());
            self.snapshot.objects.insert(k.clone(), v.clone());
            new.entry(g).or_default().insert(k, v);
        }
        let mut moved = Vec::new();
        for g in groups {
            let before = old.remove(g).unwrap_or_default();
            let after = new.remove(g).unwrap_or_default();
            let renamed = !before.keys().eq(after.keys());
            let schema = before
                .keys()
                .chain(after.keys())
                .any(|k| k.starts_with("schema "));
            if renamed || (!schema && before != after) {
                moved.push(*g);
            }
            if !after.is_empty() {
                self.keys.insert(*g, after.into_keys().collect());
            }
        }
        Ok(moved)
    }

    async fn reread_all(
        &mut self,
        conn: &mut PgConnection,
        changes: &mut BTreeMap<String, (Option<String>, Option<String>)>,
    ) -> Result<()> {
        let all = Tracker::new(conn).await?;
        for d in self.snapshot.diff(&all.snapshot) {
            let entry = changes
                .entry(d.object)
                .or_insert_with(|| (d.before.clone(), None));
            entry.1 = d.after;
        }
        *self = all;
        Ok(())
    }

    async fn dependents(&self, conn: &mut PgConnection, groups: &[i64]) -> Result<Vec<i64>> {
        let found: Vec<Option<i64>> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(self.dependents_sql.clone()))
                .bind(groups.to_vec())
                .fetch_all(conn)
                .await
                .map_err(|e| Error::database("cannot read the schema's dependencies", &e))?;
        Ok(found.into_iter().flatten().collect())
    }
}
