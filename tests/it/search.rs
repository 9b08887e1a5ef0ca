//! The `search` pattern on the real database: the vector (NULLs, weights, accents, a per-row
//! configuration), the search function (websearch syntax, empty queries, paging, snippets),
//! partitioned tables, bad input, and `pgx check`. Live tables are in `search_online`, row
//! security and attacks in `search_security`.

use crate::support::{Project, Run, TestDb};

/// A project whose first migration runs `create` (reverted by `drop`).
pub fn project_with(create: &str, drop: &str) -> Project {
    let p = Project::new();
    p.add("setup", create, drop);
    p
}

/// `pgx new search TABLE --set K=V...`.
pub fn new_search(p: &Project, table: &str, sets: &[&str]) -> Run {
    let mut args = vec!["new", "search", table];
    for s in sets {
        args.extend(["--set", s]);
    }
    p.pgx().args(args).ok()
}

pub fn up(p: &Project, db: &TestDb) -> Run {
    p.pgx().db(db).args(["migrate", "up"]).ok()
}

/// `(hit).id` of `function(query, ...)`, best first.
pub fn hits(db: &TestDb, call: &str) -> Vec<String> {
    db.column(&format!("SELECT (hit).id FROM {call}"))
}

const ARTICLES: &str =
    "CREATE TABLE articles (id int PRIMARY KEY, title text, summary varchar(200), body text)";

#[test]
fn nulls_weights_websearch_syntax_paging_and_snippets() {
    let db = TestDb::new();
    let p = project_with(ARTICLES, "DROP TABLE articles");
    new_search(&p, "articles", &["columns=title:A,summary:B,body"]);
    up(&p, &db);
    db.exec(
        "INSERT INTO articles VALUES
            (1, 'PostgreSQL search', NULL, NULL),
            (2, NULL, NULL, 'a long note about postgresql and its search'),
            (3, NULL, 'Search in PostgreSQL', NULL),
            (4, 'Exact phrase matters', NULL, 'the quick brown fox'),
            (5, 'phrase exact', NULL, 'excluded words here'),
            (6, NULL, NULL, NULL)",
    );

    // A column that is NULL adds nothing; it never makes the vector NULL.
    assert_eq!(
        db.column("SELECT id FROM articles WHERE search IS NULL"),
        Vec::<String>::new()
    );
    assert_eq!(
        db.scalar("SELECT search = ''::tsvector FROM articles WHERE id = 6"),
        Some("t".into())
    );
    assert_eq!(
        db.scalar(
            "SELECT attgenerated FROM pg_attribute WHERE attrelid = 'articles'::regclass AND attname = 'search'"
        ),
        Some("s".into()),
        "a stored generated column"
    );

    // Weights order the results: title (A) over summary (B) over body (D).
    assert_eq!(hits(&db, "articles_search('postgresql')"), ["1", "3", "2"]);
    let ranks = db.column("SELECT rank FROM articles_search('postgresql')");
    assert_eq!(ranks, ["1", "0.4", "0.1"]);

    // websearch_to_tsquery: a quoted phrase keeps its word order, `-` excludes, `or` widens.
    assert_eq!(hits(&db, "articles_search('\"exact phrase\"')"), ["4"]);
    assert_eq!(hits(&db, "articles_search('phrase -excluded')"), ["4"]);
    assert_eq!(
        hits(&db, "articles_search('fox or note') ORDER BY 1"),
        ["2", "4"]
    );
    // Empty, stop-word-only and malformed input: no rows, no error.
    for query in ["", "   ", "the and of", "\"unbalanced (& | ! :* <->", "-"] {
        let quoted = query.replace('\'', "''");
        assert_eq!(
            hits(&db, &format!("articles_search('{quoted}')")),
            Vec::<String>::new(),
            "{query:?}"
        );
    }
    assert_eq!(hits(&db, "articles_search(NULL)"), Vec::<String>::new());

    // Paging: limit and offset over the ranked order.
    assert_eq!(hits(&db, "articles_search('postgresql', 1, 1)"), ["3"]);
    assert_eq!(hits(&db, "articles_search('postgresql', 2)"), ["1", "3"]);

    // Snippets only on request, from the last column by default, with matches marked.
    assert_eq!(
        db.scalar("SELECT count(snippet) FROM articles_search('postgresql')"),
        Some("0".into())
    );
    assert_eq!(
        db.scalar(
            "SELECT snippet FROM articles_search('postgresql', headline => true) WHERE (hit).id = 2"
        ),
        Some("a long note about <b>postgresql</b> and its search".into())
    );

    // The function is inlined into the caller's query and uses the index.
    db.exec(
        "INSERT INTO articles (id, body) SELECT g, 'filler text ' || g FROM generate_series(100, 5000) g",
    );
    // VACUUM also moves GIN's pending list (fastupdate) into the index proper.
    db.exec("VACUUM ANALYZE articles");
    let plan = db
        .column("EXPLAIN SELECT * FROM articles_search('postgresql')")
        .join("\n");
    assert!(
        plan.contains("Bitmap Index Scan on articles_search_idx"),
        "{plan}"
    );

    p.pgx().db(&db).args(["check"]).ok();
}

#[test]
fn unaccent_finds_words_whatever_their_accents() {
    let db = TestDb::new();
    let p = project_with(
        "CREATE TABLE menu (id int PRIMARY KEY, name text, note text);
         CREATE TABLE plain (id int PRIMARY KEY, name text)",
        "DROP TABLE plain; DROP TABLE menu",
    );
    new_search(&p, "menu", &["columns=name:A,note", "unaccent=true"]);
    new_search(&p, "plain", &["columns=name"]);
    up(&p, &db);
    db.exec(
        "INSERT INTO menu VALUES (1, 'Café crème', NULL), (2, 'cafe noir', 'Déjà vu'), (3, 'Thé', 'naïve tea');
         INSERT INTO plain VALUES (1, 'Café crème'), (2, 'cafe noir')",
    );
    for query in ["cafe", "café", "CAFÉ", "Cafè"] {
        assert_eq!(
            hits(&db, &format!("menu_search('{query}') ORDER BY 1")),
            ["1", "2"],
            "{query}"
        );
    }
    assert_eq!(hits(&db, "menu_search('deja')"), ["2"]);
    assert_eq!(hits(&db, "menu_search('naive the')"), ["3"]);
    // Without unaccent, accents matter.
    assert_eq!(hits(&db, "plain_search('cafe')"), ["2"]);
    assert_eq!(hits(&db, "plain_search('café')"), ["1"]);

    // The configuration does the unaccenting; unaccent() itself keeps its volatility.
    assert_eq!(
        db.column("SELECT DISTINCT provolatile::text FROM pg_proc WHERE proname = 'unaccent'"),
        ["s"]
    );
    assert_eq!(
        db.scalar(
            "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'menu'::regclass"
        )
        .unwrap()
        .matches("'search.english_unaccent'::regconfig")
        .count(),
        2
    );
    p.pgx().db(&db).args(["check"]).ok();
}

#[test]
fn a_multilingual_table_uses_each_rows_configuration() {
    let db = TestDb::new();
    let p = project_with(
        "CREATE TABLE docs (id int PRIMARY KEY, lang regconfig NOT NULL, body text)",
        "DROP TABLE docs",
    );
    new_search(
        &p,
        "docs",
        &[
            "columns=body",
            "config_column=lang",
            "headline_options=StartSel=[, StopSel=]",
        ],
    );
    up(&p, &db);
    db.exec(
        "INSERT INTO docs VALUES
            (1, 'english', 'The runners were running home'),
            (2, 'french', 'Les chevaux mangeaient'),
            (3, 'french', 'un cheval blanc'),
            (4, 'simple', NULL)",
    );
    // Each row is stemmed by its own language.
    assert_eq!(
        db.column(
            "SELECT id FROM docs WHERE search = to_tsvector(lang, coalesce(body, '')) ORDER BY id"
        ),
        ["1", "2", "3", "4"]
    );
    assert_eq!(hits(&db, "docs_search('run', config => 'english')"), ["1"]);
    assert_eq!(
        hits(&db, "docs_search('chevaux', config => 'french') ORDER BY 1"),
        ["2", "3"]
    );
    // The default query configuration is `config` (english): French stems are not English ones.
    assert_eq!(hits(&db, "docs_search('chevaux')"), Vec::<String>::new());
    // Snippets use the row's configuration and the options given.
    assert_eq!(
        db.scalar("SELECT snippet FROM docs_search('cheval', config => 'french', headline => true) WHERE (hit).id = 3"),
        Some("un [cheval] blanc".into())
    );
    p.pgx().db(&db).args(["check"]).ok();

    // A text column cannot give an immutable vector: refused, saying how to convert it.
    let db = TestDb::new();
    let p = project_with(
        "CREATE TABLE docs (id int PRIMARY KEY, lang text, body text)",
        "DROP TABLE docs",
    );
    new_search(&p, "docs", &["columns=body", "config_column=lang"]);
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("public.docs.lang is text, not regconfig");
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_attribute WHERE attrelid = 'docs'::regclass AND attname = 'search'"),
        Some("0".into())
    );
}

#[test]
fn partitioned_tables_get_an_index_on_every_partition() {
    let db = TestDb::new();
    let p = project_with(
        "CREATE TABLE events (id int, at date NOT NULL, title text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
         CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
         CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')",
        "DROP TABLE events",
    );
    new_search(&p, "events", &["columns=title"]);
    up(&p, &db);
    db.exec(
        "INSERT INTO events VALUES (1, '2024-05-01', 'annual meeting'), (2, '2025-05-01', 'meeting notes'), (3, '2025-06-01', 'party')",
    );
    assert_eq!(
        db.column(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
             WHERE a.attname = 'search' AND c.relkind = 'r' ORDER BY 1"
        ),
        ["events_2024", "events_2025"]
    );
    assert_eq!(
        hits(&db, "events_search('meetings') ORDER BY 1"),
        ["1", "2"]
    );
    p.pgx().db(&db).args(["check"]).ok();

    // Online mode builds the index concurrently, which PostgreSQL cannot do on a partitioned
    // table: refused before anything changes.
    let db = TestDb::new();
    let p = project_with(
        "CREATE TABLE events (id int, at date NOT NULL, title text) PARTITION BY RANGE (at)",
        "DROP TABLE events",
    );
    new_search(&p, "events", &["columns=title", "online=true"]);
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("public.events is partitioned, and PostgreSQL cannot build an index on a partitioned table concurrently");
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_attribute WHERE attname = 'search'"),
        Some("0".into())
    );
}

#[test]
fn options_change_the_column_the_index_and_its_build() {
    let db = TestDb::new();
    let p = project_with(
        "CREATE TABLE notes (id int PRIMARY KEY, body text)",
        "DROP TABLE notes",
    );
    new_search(
        &p,
        "notes",
        &[
            "columns=body",
            "column=document",
            "fastupdate=false",
            "concurrently=true",
            "config=simple",
        ],
    );
    // The index is built in a no-transaction migration of its own, one statement.
    let files = p.files("migrations");
    let index_up = files
        .iter()
        .find(|f| f.ends_with("_search_notes_index.up.sql"))
        .expect("an index migration");
    let sql = p.read(&format!("migrations/{index_up}"));
    assert!(sql.starts_with("-- no-transaction\n"), "{sql}");
    assert_eq!(pgx::sql::split_statements(&sql).len(), 1, "{sql}");
    up(&p, &db);
    assert_eq!(
        db.scalar("SELECT pg_get_indexdef('notes_document_idx'::regclass)"),
        Some("CREATE INDEX notes_document_idx ON public.notes USING gin (document) WITH (fastupdate=off)".into())
    );
    assert_eq!(
        db.scalar(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'notes_document_idx'::regclass"
        ),
        Some("t".into())
    );
    db.exec("INSERT INTO notes VALUES (1, 'Running dogs')");
    // `simple` does not stem.
    assert_eq!(hits(&db, "notes_search('running')"), ["1"]);
    assert_eq!(hits(&db, "notes_search('run')"), Vec::<String>::new());
    p.pgx().db(&db).args(["check"]).ok();
}

#[test]
fn bad_input_fails_with_one_line_and_writes_nothing() {
    let p = project_with(
        "CREATE TABLE t (id int, body text, lang regconfig)",
        "DROP TABLE t",
    );
    let before = p.files("migrations");
    let cases: [(&[&str], &str); 5] = [
        (&[], "requires parameter `columns`"),
        (
            &["columns=body", "unaccent=true", "config_column=lang"],
            "unaccent and config_column cannot be combined",
        ),
        (
            &["columns=body", "unaccent=true", "config=french"],
            "unaccent needs an unaccented copy of config in the search infrastructure, which has them for: english",
        ),
        (
            &["columns=body:A,search"],
            "the vector column search cannot also be one of columns",
        ),
        (&["columns=body,body:B"], "columns names a column twice"),
    ];
    for (sets, message) in cases {
        let mut args = vec!["new", "search", "t"];
        for s in sets {
            args.extend(["--set", s]);
        }
        p.pgx().args(args).fails().stderr_has(message);
        assert_eq!(p.files("migrations"), before, "{sets:?}");
    }

    p.pgx()
        .args([
            "new",
            "search",
            "t",
            "--scope",
            "tenant",
            "--set",
            "columns=body",
        ])
        .fails()
        .stderr_has("cannot be rendered with --scope tenant");
    assert_eq!(p.files("migrations"), before);

    // What only the database knows fails the migration, naming it, and changes nothing.
    let db = TestDb::new();
    new_search(&p, "t", &["columns=body,title,summary"]);
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("public.t has no column title, summary");
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'search'"),
        Some("1".into()),
        "the infrastructure migration before it stays applied"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'search'"),
        Some("0".into())
    );
}

#[test]
fn a_table_too_large_to_rewrite_is_refused_unless_online() {
    let db = TestDb::new();
    let p = project_with(
        "CREATE TABLE big (id int PRIMARY KEY, body text);
         INSERT INTO big SELECT g, repeat('lorem ipsum ', 20) FROM generate_series(1, 20000) g",
        "DROP TABLE big",
    );
    new_search(&p, "big", &["columns=body", "rewrite_limit_mb=1"]);
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("MB: adding a generated column would rewrite it under an exclusive lock");
}

#[test]
fn every_function_passes_plpgsql_check() {
    let db = TestDb::new();
    let p = project_with(
        "CREATE TABLE docs (id int PRIMARY KEY, title text, body text, lang regconfig)",
        "DROP TABLE docs",
    );
    new_search(
        &p,
        "docs",
        &["columns=title:A,body", "config_column=lang", "online=true"],
    );
    up(&p, &db);
    db.exec("CREATE EXTENSION IF NOT EXISTS plpgsql_check");
    let checked = db.column(
        "SELECT p.oid::regprocedure::text FROM pg_proc p
         WHERE p.pronamespace = 'public'::regnamespace AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')
         ORDER BY 1",
    );
    assert_eq!(
        checked,
        [
            "docs_search_backfill(interval,text)",
            "docs_search_update()"
        ]
    );
    let problems = db.column(
        "SELECT p.oid::regprocedure || ': ' || c.message
         FROM pg_proc p
         CROSS JOIN LATERAL plpgsql_check_function_tb(p.oid, CASE WHEN p.prorettype = 'trigger'::regtype THEN 'docs'::regclass ELSE 0 END,
                                                     extra_warnings => true, performance_warnings => true) c
         WHERE p.pronamespace = 'public'::regnamespace AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')",
    );
    assert_eq!(problems, Vec::<String>::new());
}

#[test]
fn rendering_matches_the_snapshots() {
    use crate::snapshots::check;
    check(
        "search",
        "search",
        "public",
        Some("articles"),
        &[("columns", "title:A,summary:B,body"), ("unaccent", "true")],
    );
    check(
        "search_online",
        "search",
        "public",
        Some("docs"),
        &[
            ("columns", "title:A,body"),
            ("config_column", "lang"),
            ("online", "true"),
            ("tenant_column", "tenant_id"),
            ("leakproof", "true"),
            ("deleted_column", "deleted_at"),
        ],
    );
    check(
        "search_install",
        "search_install",
        "public",
        None,
        &[("leakproof", "true")],
    );
}
