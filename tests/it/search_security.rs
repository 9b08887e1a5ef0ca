//! Attacks on what the `search` pattern creates, each performed by the weakest role that could
//! try it: shadowing the functions, operators and types the migrating superuser resolves, writing
//! into the search schema, owning it or the extensions first.

use crate::search::{new_search, project_with, up};
use crate::support::{TestDb, TestRole, try_rows};

#[test]
fn a_search_path_hijack_reaches_nothing_the_migrator_or_a_writer_runs() {
    let attacker = TestRole::new("search_attacker", "NOSUPERUSER");
    let db = TestDb::new();
    let p = project_with(
        "CREATE TABLE articles (id int PRIMARY KEY, title varchar(100), body text);
         CREATE TABLE live (id int PRIMARY KEY, title text);
         INSERT INTO live SELECT g, 'live row ' || g FROM generate_series(1, 500) g",
        "DROP TABLE live; DROP TABLE articles",
    );
    up(&p, &db);
    // From now on the attacker's schema comes before pg_catalog for everyone (after public,
    // where the tables and pgx's history table are), and holds decoys of every function,
    // operator, type and configuration the pattern uses; each decoy records who ran it.
    db.exec(&format!(
        "CREATE SCHEMA evil AUTHORIZATION {a};
         ALTER DATABASE {db} SET search_path = public, evil, pg_catalog;",
        a = attacker.name,
        db = db.name
    ));
    let decoys = "
        CREATE TABLE evil.ran (who text, what text);
        GRANT INSERT ON evil.ran TO PUBLIC;
        CREATE FUNCTION evil.spy(what text) RETURNS boolean LANGUAGE sql VOLATILE
            AS $$ INSERT INTO evil.ran VALUES (current_user, what) RETURNING true $$;
        CREATE FUNCTION evil.to_tsvector(regconfig, text) RETURNS tsvector LANGUAGE sql VOLATILE
            AS $$ SELECT CASE WHEN evil.spy('to_tsvector') THEN 'forged'::tsvector END $$;
        CREATE FUNCTION evil.setweight(tsvector, \"char\") RETURNS tsvector LANGUAGE sql VOLATILE
            AS $$ SELECT CASE WHEN evil.spy('setweight') THEN 'forged'::tsvector END $$;
        CREATE FUNCTION evil.websearch_to_tsquery(regconfig, text) RETURNS tsquery LANGUAGE sql VOLATILE
            AS $$ SELECT CASE WHEN evil.spy('websearch_to_tsquery') THEN 'forged'::tsquery END $$;
        CREATE FUNCTION evil.ts_rank_cd(tsvector, tsquery) RETURNS real LANGUAGE sql VOLATILE
            AS $$ SELECT CASE WHEN evil.spy('ts_rank_cd') THEN 42::real END $$;
        CREATE FUNCTION evil.ts_headline(regconfig, text, tsquery) RETURNS text LANGUAGE sql VOLATILE
            AS $$ SELECT CASE WHEN evil.spy('ts_headline') THEN 'forged' END $$;
        CREATE FUNCTION evil.concat_vectors(tsvector, tsvector) RETURNS tsvector LANGUAGE sql VOLATILE
            AS $$ SELECT CASE WHEN evil.spy('||') THEN 'forged'::tsvector END $$;
        CREATE OPERATOR evil.|| (LEFTARG = tsvector, RIGHTARG = tsvector, FUNCTION = evil.concat_vectors);
        CREATE FUNCTION evil.matches(tsvector, tsquery) RETURNS boolean LANGUAGE sql VOLATILE
            AS $$ SELECT evil.spy('@@') $$;
        CREATE OPERATOR evil.@@ (LEFTARG = tsvector, RIGHTARG = tsquery, FUNCTION = evil.matches);
        CREATE FUNCTION evil.char_eq(\"char\", \"char\") RETURNS boolean LANGUAGE sql VOLATILE
            AS $$ SELECT evil.spy('char =') $$;
        CREATE OPERATOR evil.= (LEFTARG = \"char\", RIGHTARG = \"char\", FUNCTION = evil.char_eq);
        CREATE FUNCTION evil.int8_lt(int8, int8) RETURNS boolean LANGUAGE sql VOLATILE
            AS $$ SELECT evil.spy('int8 <') $$;
        CREATE OPERATOR evil.< (LEFTARG = int8, RIGHTARG = int8, FUNCTION = evil.int8_lt);
        CREATE DOMAIN evil.text AS pg_catalog.text CHECK (evil.spy('text domain'));
        CREATE DOMAIN evil.regclass AS pg_catalog.regclass CHECK (evil.spy('regclass domain'));
        CREATE DOMAIN evil.float8 AS pg_catalog.float8 CHECK (evil.spy('float8 domain'));
        CREATE TEXT SEARCH CONFIGURATION evil.english (COPY = pg_catalog.simple);
        SELECT 1";
    try_rows(&db.url_as(&attacker.name), decoys).unwrap();

    new_search(&p, "articles", &["columns=title:A,body", "unaccent=true"]);
    new_search(
        &p,
        "live",
        &["columns=title", "online=true", "batch_time=10ms"],
    );
    up(&p, &db);
    // The superuser writes and searches with that search_path too.
    db.exec(
        "INSERT INTO articles VALUES (1, 'Crème brûlée', 'a dessert'), (2, 'Tea', NULL);
         UPDATE live SET title = 'changed row' WHERE id = 3",
    );
    db.exec("CALL live_search_backfill()");
    assert_eq!(
        db.column("SELECT (hit).id FROM articles_search('creme', headline => true)"),
        ["1"]
    );
    assert_eq!(
        db.column("SELECT (hit).id FROM live_search('changed')"),
        ["3"]
    );
    assert_eq!(
        db.scalar("SELECT search::pg_catalog.text FROM articles WHERE id = 2"),
        Some("'tea':1A".into()),
        "PostgreSQL's english, not the attacker's"
    );
    p.pgx()
        .db(&db)
        .args(["migrate", "down", "--target", "0"])
        .ok();
    assert_eq!(
        db.column("SELECT who || ' ran ' || what FROM evil.ran"),
        Vec::<String>::new()
    );
}

#[test]
fn only_the_migrating_role_can_write_the_search_schema() {
    let app = TestRole::new("search_app", "NOSUPERUSER");
    let db = TestDb::new();
    let p = project_with(
        "CREATE TABLE t (id int PRIMARY KEY, body text)",
        "DROP TABLE t",
    );
    new_search(&p, "t", &["columns=body", "unaccent=true"]);
    up(&p, &db);
    db.exec(&format!(
        "GRANT CREATE ON DATABASE {} TO {}",
        db.name, app.name
    ));
    for attack in [
        "CREATE TEXT SEARCH CONFIGURATION search.english_unaccent2 (COPY = pg_catalog.simple)",
        "CREATE FUNCTION search.f() RETURNS int LANGUAGE sql RETURN 1",
        "DROP TEXT SEARCH CONFIGURATION search.english_unaccent",
        "ALTER TEXT SEARCH CONFIGURATION search.english_unaccent DROP MAPPING FOR word",
        "DROP EXTENSION unaccent CASCADE",
        "ALTER SCHEMA search RENAME TO elsewhere",
    ] {
        let err = try_rows(&db.url_as(&app.name), attack).unwrap_err();
        assert!(
            err.contains("permission denied") || err.contains("must be owner"),
            "{attack}: {err}"
        );
    }
    // Reading is fine: a configuration can be named in a query of one's own.
    assert_eq!(
        try_rows(
            &db.url_as(&app.name),
            "SELECT to_tsvector('search.english_unaccent', 'Café')::text"
        )
        .unwrap()[0][0]
            .as_deref(),
        Some("'cafe':1")
    );

    // If CREATE on it is handed out anyway, the next search migration refuses to use it.
    db.exec(&format!("GRANT CREATE ON SCHEMA search TO {}", app.name));
    p.add(
        "more",
        "CREATE TABLE u (id int PRIMARY KEY, body text)",
        "DROP TABLE u",
    );
    new_search(&p, "u", &["columns=body", "unaccent=true"]);
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has(&format!("schema search is writable by {} too", app.name));
}

#[test]
fn a_schema_or_extension_another_role_set_up_first_is_refused() {
    let attacker = TestRole::new("search_attacker", "NOSUPERUSER");
    // The attacker creates the schema first, hoping pgx moves in.
    let db = TestDb::new();
    db.exec(&format!(
        "GRANT CREATE ON DATABASE {} TO {}",
        db.name, attacker.name
    ));
    try_rows(&db.url_as(&attacker.name), "CREATE SCHEMA search").unwrap();
    let p = project_with(
        "CREATE TABLE t (id int PRIMARY KEY, body text)",
        "DROP TABLE t",
    );
    new_search(&p, "t", &["columns=body"]);
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has("schema search exists already");

    // The attacker installs unaccent (a trusted extension) first, and so owns it.
    let db = TestDb::new();
    db.exec(&format!(
        "GRANT CREATE ON DATABASE {} TO {}",
        db.name, attacker.name
    ));
    try_rows(&db.url_as(&attacker.name), "CREATE EXTENSION unaccent").unwrap();
    p.pgx()
        .db(&db)
        .args(["migrate", "up"])
        .fails()
        .stderr_has(&format!(
            "extension unaccent belongs to role {}, which could drop it",
            attacker.name
        ));
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'search'"),
        Some("0".into()),
        "nothing was installed"
    );
}

#[test]
fn extensions_installed_before_stay_and_the_ones_pgx_created_go() {
    let db = TestDb::new();
    db.exec("CREATE EXTENSION btree_gin");
    let before = db.snapshot();
    let p = project_with(
        "CREATE TABLE t (id int PRIMARY KEY, body text)",
        "DROP TABLE t",
    );
    new_search(
        &p,
        "t",
        &["columns=body", "unaccent=true", "tenant_column=id"],
    );
    up(&p, &db);
    assert_eq!(
        db.column("SELECT extname || ' ' || extnamespace::regnamespace FROM pg_extension WHERE extname IN ('btree_gin', 'unaccent') ORDER BY 1"),
        ["btree_gin public", "unaccent search"]
    );
    // Something else built on unaccent: the infrastructure's down stops and PostgreSQL says what.
    db.exec(
        "CREATE TEXT SEARCH CONFIGURATION public.mine (COPY = pg_catalog.simple);
         ALTER TEXT SEARCH CONFIGURATION public.mine ALTER MAPPING FOR word WITH search.unaccent, simple",
    );
    p.pgx()
        .db(&db)
        .args(["migrate", "down", "--target", "0"])
        .fails()
        .stderr_has("cannot drop extension unaccent because other objects depend on it");
    db.exec("DROP TEXT SEARCH CONFIGURATION public.mine");
    p.pgx()
        .db(&db)
        .args(["migrate", "down", "--target", "0"])
        .ok();
    assert_eq!(before.diff(&db.snapshot()), vec![]);
    assert_eq!(
        db.column("SELECT extname FROM pg_extension WHERE extname IN ('btree_gin', 'unaccent')"),
        ["btree_gin"]
    );
}
