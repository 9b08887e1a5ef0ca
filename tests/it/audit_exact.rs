//! The audit log is never wrong: old and new rows are never mispaired, excluded columns stay
//! excluded, and large values never fail the write.

use crate::support::{Project, TestDb};

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn audited(db: &TestDb, setup: &str, table: &str, extra: &[&str]) -> Project {
    let p = Project::new();
    p.add("setup", setup, "SELECT 1");
    let mut args = vec!["new", "audit", table];
    args.extend_from_slice(extra);
    p.pgx().args(&args).ok();
    p.pgx().db(db).args(["migrate", "up"]).ok();
    p
}

/// Issue 11.1: a row moved to a partition whose BEFORE INSERT trigger drops it leaves an old
/// row without a new one. Paired by position, every later row would be attributed the state of
/// the next; the log records the dropped row's DELETE and the others' own changes.
#[test]
fn a_row_dropped_on_its_way_to_another_partition_shifts_no_pair() {
    let db = TestDb::new();
    let _p = audited(
        &db,
        "CREATE TABLE p (id int, region text, v text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
         CREATE TABLE p_a PARTITION OF p FOR VALUES IN ('a');
         CREATE TABLE p_b PARTITION OF p FOR VALUES IN ('b');
         CREATE FUNCTION refuse_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
         CREATE TRIGGER refuse BEFORE INSERT ON p_b FOR EACH ROW EXECUTE FUNCTION refuse_row();
         INSERT INTO p VALUES (1, 'a', 'one'), (2, 'a', 'two'), (3, 'a', 'three'), (4, 'a', 'four')",
        "p",
        &[],
    );
    db.exec("UPDATE p SET v = v || '!', region = CASE WHEN id = 2 THEN 'b' ELSE region END");
    assert_eq!(db.scalar("SELECT count(*) FROM p").as_deref(), Some("3"));
    assert_eq!(
        db.rows(
            "SELECT operation, row_key->>'id', old_row->>'v', new_row->>'v'
             FROM audit.log ORDER BY (row_key->>'id')::int, operation"
        ),
        vec![
            vec![s("UPDATE"), s("1"), s("one"), s("one!")],
            vec![s("DELETE"), s("2"), s("two"), None],
            vec![s("UPDATE"), s("3"), s("three"), s("three!")],
            vec![s("UPDATE"), s("4"), s("four"), s("four!")],
        ]
    );
}

/// Issue 11.1: a BEFORE UPDATE trigger that returns NULL for some rows: those rows are neither
/// updated nor recorded, and the others are recorded with their own old and new values.
#[test]
fn rows_a_before_update_trigger_skips_are_not_recorded_and_the_rest_pair_right() {
    let db = TestDb::new();
    let _p = audited(
        &db,
        "CREATE TABLE t (id int PRIMARY KEY, v text);
         CREATE FUNCTION skip_even() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN IF NEW.id % 2 = 0 THEN RETURN NULL; END IF; RETURN NEW; END $$;
         CREATE TRIGGER skip_even BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION skip_even()",
        "t",
        &[],
    );
    db.exec(
        "INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 6) i;
         UPDATE t SET v = v || '!', id = id + 10",
    );
    assert_eq!(
        db.rows(
            "SELECT old_key->>'id', row_key->>'id', old_row->>'v', new_row->>'v'
             FROM audit.log WHERE operation = 'UPDATE' ORDER BY id"
        ),
        vec![
            vec![s("1"), s("11"), s("v1"), s("v1!")],
            vec![s("3"), s("13"), s("v3"), s("v3!")],
            vec![s("5"), s("15"), s("v5"), s("v5!")],
        ]
    );
}

/// Issue 11.2: a column excluded by name stays excluded when it is dropped and added again, and
/// a rename keeps it excluded.
#[test]
fn an_excluded_column_added_again_under_its_name_stays_excluded() {
    let db = TestDb::new();
    let _p = audited(
        &db,
        "CREATE TABLE users (id int PRIMARY KEY, name text, password_hash text, card_token text)",
        "users",
        &["--set", "exclude=password_hash,card_token"],
    );
    db.exec(
        "ALTER TABLE users DROP COLUMN password_hash;
         ALTER TABLE users ADD COLUMN password_hash text;
         ALTER TABLE users RENAME COLUMN card_token TO token;
         INSERT INTO users (id, name, password_hash, token) VALUES (1, 'ada', 'secret', 'tok');
         UPDATE users SET password_hash = 'other', token = 'tok2'",
    );
    assert_eq!(
        db.rows("SELECT operation, new_row::text FROM audit.log ORDER BY id"),
        vec![vec![s("INSERT"), s(r#"{"id": 1, "name": "ada"}"#)]],
        "nothing excluded is recorded, and an UPDATE of excluded columns only records nothing"
    );
}

/// Issue 11.4: a value above max_value_bytes is recorded as a marker with its size and hash,
/// and the write goes on; smaller values of the same statement are recorded as usual.
#[test]
fn a_value_above_max_value_bytes_is_a_marker_and_never_fails_the_write() {
    let db = TestDb::new();
    let _p = audited(
        &db,
        "CREATE TABLE files (id int PRIMARY KEY, name text, data bytea);
         ALTER TABLE files ALTER COLUMN data SET STORAGE EXTERNAL",
        "files",
        &["--set", "max_value_bytes=100000"],
    );
    // 160 kB of random bytes (incompressible), and a small value.
    db.exec(
        "INSERT INTO files
         SELECT 1, 'big', decode(string_agg(md5(i::text || random()::text), ''), 'hex') FROM generate_series(1, 10000) i
         UNION ALL SELECT 2, 'small', '\\x0102'::bytea;
         UPDATE files SET name = name || '!'",
    );
    // The hash of the value's text, as recorded otherwise (bytea as hex).
    let expected_hash = db.scalar(
        "SELECT encode(sha256(convert_to(to_jsonb(data) #>> '{}', 'UTF8')), 'hex') FROM files WHERE id = 1",
    );
    assert_eq!(
        db.rows(
            "SELECT operation, row_key->>'id', new_row->>'name', new_row->'data'->>'pgx_omitted',
                    ((new_row->'data'->>'bytes')::int > 100000)::text, new_row->'data'->>'sha256',
                    CASE jsonb_typeof(new_row->'data') WHEN 'string' THEN new_row->>'data' END
             FROM audit.log ORDER BY (row_key->>'id')::int, id"
        ),
        vec![
            vec![
                s("INSERT"),
                s("1"),
                s("big"),
                s("true"),
                s("true"),
                expected_hash.clone(),
                None
            ],
            vec![
                s("UPDATE"),
                s("1"),
                s("big!"),
                s("true"),
                s("true"),
                expected_hash.clone(),
                None
            ],
            vec![
                s("INSERT"),
                s("2"),
                s("small"),
                None,
                None,
                None,
                s("\\x0102")
            ],
            vec![
                s("UPDATE"),
                s("2"),
                s("small!"),
                None,
                None,
                None,
                s("\\x0102")
            ],
        ]
    );
    assert!(expected_hash.is_some_and(|h| h.len() == 64));
    assert_eq!(
        db.scalar("SELECT count(*) FROM audit.log WHERE octet_length(new_row::text) > 10000")
            .as_deref(),
        Some("0"),
        "the large value is not in the log"
    );
}
