//! The catalog queries of a snapshot. Each part yields `(key, value, group)` rows: `group` is
//! the OID whose catalog rows decide the object's definition, the unit `Tracker` recomputes: a
//! relation for itself and everything attached to it (columns, indexes, constraints, triggers,
//! policies, its view query, comments on any of them), a domain for its constraints, otherwise
//! the object itself. OIDs are allocated from one counter per cluster, so a group OID names one
//! object whatever its catalog.

/// Schemas that are not the user's.
pub(super) const SYSTEM_SCHEMAS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') \
     AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'";

fn acl(expr: &str) -> String {
    format!(
        "(SELECT coalesce(string_agg(x::text, ',' ORDER BY x::text), '') FROM unnest({expr}) x)"
    )
}

/// Each part yields `(key, value, group)` rows. `n` is the object's namespace in every part.
pub(super) fn parts() -> Vec<String> {
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
                    'owner ' || pg_get_userbyid(n.nspowner)::text || ' acl ' || {nsp_acl},
             (n.oid)::bigint
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
                                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) || ')'),
             (c.oid)::bigint
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
                              CASE WHEN cardinality(a.attacl) > 0 THEN 'acl ' || {col_acl} END),
             (c.oid)::bigint
             FROM pg_attribute a
             JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_type t ON t.oid = a.atttypid
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE {user} AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped AND {not_history}"
        ),
        format!(
            "SELECT 'index ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname),
                    pg_get_indexdef(i.indexrelid) || CASE WHEN i.indisvalid THEN '' ELSE ' INVALID' END,
             (i.indrelid)::bigint
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             JOIN pg_class t ON t.oid = i.indrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE {user} AND t.relname <> '_sqlx_migrations'"
        ),
        format!(
            "SELECT 'constraint ' || quote_ident(n.nspname) || '.' || coalesce(quote_ident(c.relname) || '.', '') || quote_ident(k.conname),
                    pg_get_constraintdef(k.oid),
             (coalesce(nullif(k.conrelid, 0), k.contypid))::bigint
             FROM pg_constraint k
             JOIN pg_namespace n ON n.oid = k.connamespace
             LEFT JOIN pg_class c ON c.oid = k.conrelid
             WHERE {user} AND coalesce(c.relname, '') <> '_sqlx_migrations'"
        ),
        format!(
            "SELECT 'trigger ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(g.tgname),
                    pg_get_triggerdef(g.oid) || ' enabled ' || g.tgenabled::text,
             (g.tgrelid)::bigint
             FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE {user} AND NOT g.tgisinternal"
        ),
        format!(
            "SELECT 'function ' || quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')',
                    concat_ws(' ', 'owner ' || pg_get_userbyid(p.proowner)::text,
                              'acl ' || {fn_acl},
                              CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid) ELSE 'kind ' || p.prokind::text END),
             (p.oid)::bigint
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
                              'with check (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')'),
             (p.polrelid)::bigint
             FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE {user}"
        ),
        format!(
            "SELECT 'view ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname), pg_get_viewdef(c.oid),
             (c.oid)::bigint
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE {user} AND c.relkind IN ('v', 'm')"
        ),
        format!(
            "SELECT 'sequence ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname),
                    concat_ws(' ', format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle),
             (s.seqrelid)::bigint
             FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE {user}"
        ),
        format!(
            "SELECT 'type ' || quote_ident(n.nspname) || '.' || quote_ident(t.typname),
                    concat_ws(' ', 'kind ' || t.typtype::text,
                              'owner ' || pg_get_userbyid(t.typowner)::text,
                              CASE WHEN t.typnotnull THEN 'not null' END,
                              'default ' || t.typdefault,
                              CASE WHEN t.typtype = 'e' THEN (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid) END,
                              CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END),
             (t.oid)::bigint
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
                               FROM pg_ts_config_map m WHERE m.mapcfg = c.oid)),
             (c.oid)::bigint
             FROM pg_ts_config c JOIN pg_namespace n ON n.oid = c.cfgnamespace
             WHERE {user}
               AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_ts_config'::regclass AND d.objid = c.oid AND d.deptype = 'e')"
        ),
        format!(
            "SELECT 'operator ' || quote_ident(n.nspname) || '.' || o.oprname || '(' || coalesce(format_type(o.oprleft, NULL), 'NONE') || ', ' || format_type(o.oprright, NULL) || ')',
                    concat_ws(' ', 'owner ' || pg_get_userbyid(o.oprowner)::text, 'function ' || o.oprcode::regprocedure::text),
             (o.oid)::bigint
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
                                             FROM pg_opclass c WHERE c.opcfamily = f.oid)),
             (f.oid)::bigint
             FROM pg_opfamily f JOIN pg_namespace n ON n.oid = f.opfnamespace JOIN pg_am am ON am.oid = f.opfmethod
             WHERE {user}
               AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_opfamily'::regclass AND d.objid = f.oid AND d.deptype = 'e')"
        ),
        "SELECT 'extension ' || quote_ident(x.extname), x.extversion || ' schema ' || quote_ident(n.nspname),
         (x.oid)::bigint
         FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace"
            .to_string(),
        "SELECT 'default privileges ' || pg_get_userbyid(d.defaclrole)::text || ' ' || coalesce(quote_ident(n.nspname), '*') || ' ' || d.defaclobjtype::text,
                d.defaclacl::text,
         (d.oid)::bigint
         FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace"
            .to_string(),
        // Comments are objects of their own, named as PostgreSQL names the object commented on,
        // so a down that forgets one says which.
        format!(
            "SELECT 'comment on ' || o.type || ' ' || o.identity, d.description, ({comment_group})::bigint
             FROM pg_description d
             CROSS JOIN LATERAL pg_identify_object(d.classoid, d.objoid, d.objsubid) o
             LEFT JOIN pg_namespace n ON n.nspname = coalesce(o.schema, CASE WHEN d.classoid = 'pg_namespace'::regclass THEN o.identity END)
             WHERE (d.objoid >= {FIRST_USER_OID} OR d.objoid = {PUBLIC_SCHEMA_OID})
               AND (n.oid IS NULL OR {user})
               AND NOT EXISTS (SELECT FROM pg_class h WHERE d.classoid = 'pg_class'::regclass AND h.oid = d.objoid AND h.relname = '_sqlx_migrations')
               AND NOT EXISTS (SELECT FROM pg_depend e WHERE e.classid = d.classoid AND e.objid = d.objoid AND e.deptype = 'e')",
            comment_group = group_of("d.classoid", "d.objoid"),
        ),
    ]
}

/// Objects created after initdb have OIDs from here on (PostgreSQL's `FirstNormalObjectId`);
/// the counter wraps around to it, never below.
pub(super) const FIRST_USER_OID: u32 = 16384;
/// The `public` schema initdb creates (its OID is fixed in the catalog's source).
const PUBLIC_SCHEMA_OID: u32 = 2200;

/// The group (see the module's doc) of the object `(classid, objid)` of `pg_depend` or
/// `pg_description`.
fn group_of(classid: &str, objid: &str) -> String {
    format!(
        "CASE {classid}
            WHEN 'pg_class'::regclass THEN coalesce((SELECT i.indrelid FROM pg_index i WHERE i.indexrelid = {objid}), {objid})
            WHEN 'pg_attrdef'::regclass THEN (SELECT a.adrelid FROM pg_attrdef a WHERE a.oid = {objid})
            WHEN 'pg_constraint'::regclass THEN (SELECT coalesce(nullif(k.conrelid, 0), k.contypid) FROM pg_constraint k WHERE k.oid = {objid})
            WHEN 'pg_trigger'::regclass THEN (SELECT t.tgrelid FROM pg_trigger t WHERE t.oid = {objid})
            WHEN 'pg_policy'::regclass THEN (SELECT p.polrelid FROM pg_policy p WHERE p.oid = {objid})
            WHEN 'pg_rewrite'::regclass THEN (SELECT r.ev_class FROM pg_rewrite r WHERE r.oid = {objid})
            WHEN 'pg_amop'::regclass THEN (SELECT a.amopfamily FROM pg_amop a WHERE a.oid = {objid})
            WHEN 'pg_amproc'::regclass THEN (SELECT a.amprocfamily FROM pg_amproc a WHERE a.oid = {objid})
            WHEN 'pg_opclass'::regclass THEN (SELECT c.opcfamily FROM pg_opclass c WHERE c.oid = {objid})
            ELSE {objid} END"
    )
}

/// Per group, the number of its catalog rows and the sum of their `xmin`s: a row inserted,
/// updated or deleted (transactionally, as all DDL is) changes one or the other, since a new
/// row version carries the id of a transaction later than the one it replaces. Reads no
/// definitions, only index ranges above `FIRST_USER_OID`, so it stays cheap however many
/// objects the system catalogs hold.
pub(super) fn fingerprint() -> String {
    let user = SYSTEM_SCHEMAS;
    let first = FIRST_USER_OID;
    let rows = [
        format!("SELECT n.oid, n.xmin FROM pg_namespace n WHERE {user}"),
        format!(
            "SELECT c.oid, c.xmin FROM pg_class c WHERE c.oid >= {first} AND c.relkind NOT IN ('i', 'I')"
        ),
        format!(
            "SELECT i.indrelid, c.xmin FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid >= {first}"
        ),
        format!("SELECT i.indrelid, i.xmin FROM pg_index i WHERE i.indrelid >= {first}"),
        format!("SELECT a.attrelid, a.xmin FROM pg_attribute a WHERE a.attrelid >= {first}"),
        format!("SELECT a.adrelid, a.xmin FROM pg_attrdef a WHERE a.adrelid >= {first}"),
        format!(
            "SELECT coalesce(nullif(k.conrelid, 0), k.contypid), k.xmin FROM pg_constraint k WHERE k.oid >= {first}"
        ),
        format!("SELECT t.tgrelid, t.xmin FROM pg_trigger t WHERE t.tgrelid >= {first}"),
        format!("SELECT p.polrelid, p.xmin FROM pg_policy p WHERE p.polrelid >= {first}"),
        format!("SELECT r.ev_class, r.xmin FROM pg_rewrite r WHERE r.ev_class >= {first}"),
        format!("SELECT s.seqrelid, s.xmin FROM pg_sequence s WHERE s.seqrelid >= {first}"),
        format!(
            "SELECT p.partrelid, p.xmin FROM pg_partitioned_table p WHERE p.partrelid >= {first}"
        ),
        format!("SELECT i.inhrelid, i.xmin FROM pg_inherits i WHERE i.inhrelid >= {first}"),
        format!("SELECT p.oid, p.xmin FROM pg_proc p WHERE p.oid >= {first}"),
        format!("SELECT t.oid, t.xmin FROM pg_type t WHERE t.oid >= {first}"),
        format!("SELECT e.enumtypid, e.xmin FROM pg_enum e WHERE e.enumtypid >= {first}"),
        format!("SELECT c.oid, c.xmin FROM pg_ts_config c WHERE c.oid >= {first}"),
        format!("SELECT m.mapcfg, m.xmin FROM pg_ts_config_map m WHERE m.mapcfg >= {first}"),
        format!("SELECT o.oid, o.xmin FROM pg_operator o WHERE o.oid >= {first}"),
        format!("SELECT f.oid, f.xmin FROM pg_opfamily f WHERE f.oid >= {first}"),
        format!("SELECT a.amopfamily, a.xmin FROM pg_amop a WHERE a.amopfamily >= {first}"),
        format!("SELECT a.amprocfamily, a.xmin FROM pg_amproc a WHERE a.amprocfamily >= {first}"),
        format!("SELECT c.opcfamily, c.xmin FROM pg_opclass c WHERE c.opcfamily >= {first}"),
        // plpgsql comes with the database (an OID below the first user one), and may be dropped.
        "SELECT x.oid, x.xmin FROM pg_extension x".to_string(),
        "SELECT d.oid, d.xmin FROM pg_default_acl d".to_string(),
        format!(
            "SELECT {}, d.xmin FROM pg_description d WHERE d.objoid >= {first} OR d.objoid = {PUBLIC_SCHEMA_OID}",
            group_of("d.classoid", "d.objoid")
        ),
    ];
    format!(
        "SELECT g::bigint, count(*), sum(x::text::bigint)::bigint FROM (\n{}\n) r(g, x) WHERE g IS NOT NULL GROUP BY g",
        rows.join("\nUNION ALL\n")
    )
}

/// The groups of the objects that depend on the groups `$1`: their definitions name those
/// objects (a view its table's columns, a trigger its function, a column its type), so they
/// read differently when one is renamed.
pub(super) fn dependents() -> String {
    format!(
        "SELECT DISTINCT ({})::bigint FROM pg_depend d
         WHERE d.refclassid = ANY (ARRAY['pg_class', 'pg_proc', 'pg_type', 'pg_namespace', 'pg_ts_config',
                                         'pg_operator', 'pg_opfamily', 'pg_extension']::regclass[]::oid[])
           AND d.refobjid = ANY ($1::int8[]::oid[]) AND d.objid >= {FIRST_USER_OID} AND d.deptype <> 'e'",
        group_of("d.classid", "d.objid")
    )
}
