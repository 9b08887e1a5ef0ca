//! A catalog snapshot: every user-visible object of a database as readable `kind name` →
//! definition pairs, so two snapshots can be compared and their differences listed by name.
//! OIDs never appear (they change when an object is dropped and created again); the
//! `_sqlx_migrations` history table is left out (it changes with every migration).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use sqlx::Row;
use sqlx::postgres::PgConnection;

use crate::error::{Error, Result};

/// Schemas that are not the user's.
const SYSTEM_SCHEMAS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') \
     AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'";

fn acl(expr: &str) -> String {
    format!(
        "(SELECT coalesce(string_agg(x::text, ',' ORDER BY x::text), '') FROM unnest({expr}) x)"
    )
}

/// Each part yields `(key, value)` rows. `n` is the object's namespace in every part.
fn parts() -> Vec<String> {
    let user = SYSTEM_SCHEMAS;
    let not_history = "c.relname <> '_sqlx_migrations'";
    // A NULL ACL means the owner's defaults; after a GRANT and a REVOKE PostgreSQL keeps them
    // spelled out instead. Compare the spelled-out, sorted form, so equal privileges are equal.
    let nsp_acl = acl("coalesce(n.nspacl, acldefault('n', n.nspowner))");
    let rel_acl = acl(
        "coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::\"char\", c.relowner))",
    );
    let col_acl = acl("a.attacl");
    let fn_acl = acl("coalesce(p.proacl, acldefault('f', p.proowner))");
    vec![
        format!(
            "SELECT 'schema ' || quote_ident(n.nspname),
                    'owner ' || pg_get_userbyid(n.nspowner)::text || ' acl ' || {nsp_acl}
             FROM pg_namespace n WHERE {user}"
        ),
        format!(
            "SELECT 'relation ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname),
                    concat_ws(' ', 'kind ' || c.relkind::text,
                              'owner ' || pg_get_userbyid(c.relowner)::text,
                              'acl ' || {rel_acl},
                              CASE WHEN c.relrowsecurity THEN 'row-security' END,
                              CASE WHEN c.relforcerowsecurity THEN 'force-row-security' END,
                              'options ' || coalesce(c.reloptions::text, '-'),
                              CASE WHEN c.relkind = 'p' THEN 'partition-by ' || pg_get_partkeydef(c.oid) END,
                              CASE WHEN c.relispartition THEN 'partition-of ' || (
                                  SELECT quote_ident(pn.nspname) || '.' || quote_ident(p.relname)
                                  FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
                                  JOIN pg_namespace pn ON pn.oid = p.relnamespace
                                  WHERE i.inhrelid = c.oid) || ' ' || pg_get_expr(c.relpartbound, c.oid) END,
                              'persistence ' || c.relpersistence::text,
                              'columns (' || (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
                                  FROM pg_attribute a
                                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) || ')')
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE {user} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND {not_history}"
        ),
        format!(
            "SELECT 'column ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(a.attname),
                    concat_ws(' ', format_type(a.atttypid, a.atttypmod),
                              CASE WHEN a.attnotnull THEN 'not null' END,
                              CASE WHEN a.attgenerated = 's' THEN 'generated always as (' || pg_get_expr(d.adbin, d.adrelid) || ') stored'
                                   WHEN d.adbin IS NOT NULL THEN 'default ' || pg_get_expr(d.adbin, d.adrelid) END,
                              CASE a.attidentity WHEN 'a' THEN 'identity always' WHEN 'd' THEN 'identity by default' END,
                              CASE WHEN a.attcollation <> t.typcollation THEN 'collate ' || (SELECT collname FROM pg_collation WHERE oid = a.attcollation) END,
                              CASE WHEN cardinality(a.attacl) > 0 THEN 'acl ' || {col_acl} END)
             FROM pg_attribute a
             JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_type t ON t.oid = a.atttypid
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE {user} AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped AND {not_history}"
        ),
        format!(
            "SELECT 'index ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname),
                    pg_get_indexdef(i.indexrelid) || CASE WHEN i.indisvalid THEN '' ELSE ' INVALID' END
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             JOIN pg_class t ON t.oid = i.indrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE {user} AND t.relname <> '_sqlx_migrations'"
        ),
        format!(
            "SELECT 'constraint ' || quote_ident(n.nspname) || '.' || coalesce(quote_ident(c.relname) || '.', '') || quote_ident(k.conname),
                    pg_get_constraintdef(k.oid)
             FROM pg_constraint k
             JOIN pg_namespace n ON n.oid = k.connamespace
             LEFT JOIN pg_class c ON c.oid = k.conrelid
             WHERE {user} AND coalesce(c.relname, '') <> '_sqlx_migrations'"
        ),
        format!(
            "SELECT 'trigger ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(g.tgname),
                    pg_get_triggerdef(g.oid) || ' enabled ' || g.tgenabled::text
             FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE {user} AND NOT g.tgisinternal"
        ),
        format!(
            "SELECT 'function ' || quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')',
                    concat_ws(' ', 'owner ' || pg_get_userbyid(p.proowner)::text,
                              'acl ' || {fn_acl},
                              CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid) ELSE 'kind ' || p.prokind::text END)
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE {user}
               AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')"
        ),
        format!(
            "SELECT 'policy ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(p.polname),
                    concat_ws(' ', CASE WHEN p.polpermissive THEN 'permissive' ELSE 'restrictive' END,
                              'for ' || p.polcmd::text,
                              'to ' || (SELECT string_agg(CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r)::text END, ',' ORDER BY 1) FROM unnest(p.polroles) r),
                              'using (' || pg_get_expr(p.polqual, p.polrelid) || ')',
                              'with check (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')')
             FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE {user}"
        ),
        format!(
            "SELECT 'view ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname), pg_get_viewdef(c.oid)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE {user} AND c.relkind IN ('v', 'm')"
        ),
        format!(
            "SELECT 'sequence ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname),
                    concat_ws(' ', format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
             FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE {user}"
        ),
        format!(
            "SELECT 'type ' || quote_ident(n.nspname) || '.' || quote_ident(t.typname),
                    concat_ws(' ', 'kind ' || t.typtype::text,
                              CASE WHEN t.typtype = 'e' THEN (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid) END,
                              CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END)
             FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE {user} AND t.typtype IN ('e', 'd', 'r', 'm')
               AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')"
        ),
        format!(
            "SELECT 'text search configuration ' || quote_ident(n.nspname) || '.' || quote_ident(c.cfgname),
                    concat_ws(' ', 'owner ' || pg_get_userbyid(c.cfgowner)::text,
                              'parser ' || (SELECT quote_ident(pn.nspname) || '.' || quote_ident(p.prsname) FROM pg_ts_parser p
                                             JOIN pg_namespace pn ON pn.oid = p.prsnamespace WHERE p.oid = c.cfgparser),
                              (SELECT string_agg(m.maptokentype::text || '=' || m.mapdict::regdictionary::text, ',' ORDER BY m.maptokentype, m.mapseqno)
                               FROM pg_ts_config_map m WHERE m.mapcfg = c.oid))
             FROM pg_ts_config c JOIN pg_namespace n ON n.oid = c.cfgnamespace
             WHERE {user}
               AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_ts_config'::regclass AND d.objid = c.oid AND d.deptype = 'e')"
        ),
        format!(
            "SELECT 'operator ' || quote_ident(n.nspname) || '.' || o.oprname || '(' || coalesce(format_type(o.oprleft, NULL), 'NONE') || ', ' || format_type(o.oprright, NULL) || ')',
                    concat_ws(' ', 'owner ' || pg_get_userbyid(o.oprowner)::text, 'function ' || o.oprcode::regprocedure::text)
             FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
             WHERE {user}
               AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_operator'::regclass AND d.objid = o.oid AND d.deptype = 'e')"
        ),
        format!(
            "SELECT 'operator family ' || quote_ident(n.nspname) || '.' || quote_ident(f.opfname) || ' using ' || am.amname,
                    concat_ws(' ', 'owner ' || pg_get_userbyid(f.opfowner)::text,
                              'operators ' || (SELECT string_agg(a.amopstrategy || '=' || a.amopopr::regoperator::text, ',' ORDER BY a.amopstrategy)
                                               FROM pg_amop a WHERE a.amopfamily = f.oid),
                              'functions ' || (SELECT string_agg(p.amprocnum || '=' || p.amproc::regprocedure::text, ',' ORDER BY p.amprocnum)
                                               FROM pg_amproc p WHERE p.amprocfamily = f.oid),
                              'classes ' || (SELECT string_agg(quote_ident(c.opcname) || CASE WHEN c.opcdefault THEN ' default' ELSE '' END, ',' ORDER BY c.opcname)
                                             FROM pg_opclass c WHERE c.opcfamily = f.oid))
             FROM pg_opfamily f JOIN pg_namespace n ON n.oid = f.opfnamespace JOIN pg_am am ON am.oid = f.opfmethod
             WHERE {user}
               AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_opfamily'::regclass AND d.objid = f.oid AND d.deptype = 'e')"
        ),
        "SELECT 'extension ' || quote_ident(x.extname), x.extversion || ' schema ' || quote_ident(n.nspname)
         FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace"
            .to_string(),
        "SELECT 'default privileges ' || pg_get_userbyid(d.defaclrole)::text || ' ' || coalesce(quote_ident(n.nspname), '*') || ' ' || d.defaclobjtype::text,
                d.defaclacl::text
         FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace"
            .to_string(),
    ]
}

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

impl Snapshot {
    pub async fn take(conn: &mut PgConnection) -> Result<Snapshot> {
        let sql = parts()
            .iter()
            .map(|p| format!("({p})"))
            .collect::<Vec<_>>()
            .join("\nUNION ALL\n");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(conn)
            .await
            .map_err(|e| Error::database("cannot snapshot the schema", &e))?;
        let mut objects = BTreeMap::new();
        for row in rows {
            let key: String = row
                .try_get(0)
                .map_err(|e| Error::database("cannot snapshot the schema", &e))?;
            let value: Option<String> = row
                .try_get(1)
                .map_err(|e| Error::database("cannot snapshot the schema", &e))?;
            objects.insert(key, value.unwrap_or_default());
        }
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
