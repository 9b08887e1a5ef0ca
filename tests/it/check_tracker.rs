//! The snapshot `pgx check` keeps up to date incrementally is, after every kind of change, the
//! snapshot read whole: creating, altering, renaming (which changes how other objects read),
//! commenting, granting and dropping.

use pgx::db::snapshot::{Snapshot, Tracker};
use sqlx::Connection;

use crate::support::{TestDb, TestRole, block_on};

/// Each step is one change; after each the tracker must equal a whole snapshot, and report as
/// changes exactly the differences between the two whole snapshots.
fn steps(role: &str) -> Vec<String> {
    [
        "CREATE SCHEMA app",
        "CREATE TYPE app.mood AS ENUM ('ok', 'sad')",
        "CREATE DOMAIN app.positive AS int CHECK (VALUE > 0)",
        "CREATE TABLE app.people (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, mood app.mood, n app.positive)",
        "CREATE TABLE app.orders (id bigint PRIMARY KEY, person bigint REFERENCES app.people (id), item text)",
        "CREATE VIEW app.named AS SELECT id, name FROM app.people",
        "CREATE VIEW app.named_again AS SELECT name FROM app.named",
        "CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
        "CREATE TRIGGER people_touch BEFORE UPDATE ON app.people FOR EACH ROW EXECUTE FUNCTION app.touch()",
        "CREATE FUNCTION app.visible(bigint) RETURNS boolean LANGUAGE sql STABLE AS 'SELECT $1 > 0'",
        "ALTER TABLE app.orders ENABLE ROW LEVEL SECURITY",
        "CREATE POLICY orders_visible ON app.orders USING (app.visible(person))",
        "ALTER TABLE app.orders FORCE ROW LEVEL SECURITY",
        "CREATE INDEX orders_item ON app.orders (item)",
        "CREATE SEQUENCE app.counter",
        "ALTER TABLE app.orders ADD COLUMN total numeric DEFAULT nextval('app.counter')",
        // Renames: other objects name these, and read differently afterwards.
        "ALTER TABLE app.people RENAME COLUMN name TO full_name",
        "ALTER TABLE app.people RENAME TO persons",
        "ALTER FUNCTION app.touch() RENAME TO touched",
        "ALTER FUNCTION app.visible(bigint) RENAME TO shown",
        "ALTER TYPE app.mood RENAME TO feeling",
        "ALTER SEQUENCE app.counter RENAME TO tally",
        "ALTER INDEX app.orders_item RENAME TO orders_by_item",
        "ALTER TYPE app.feeling ADD VALUE 'glad'",
        "ALTER TYPE app.feeling RENAME VALUE 'sad' TO 'blue'",
        "ALTER SCHEMA app RENAME TO shop",
        // Comments on everything that can have one.
        "COMMENT ON SCHEMA shop IS 'the shop'",
        "COMMENT ON SCHEMA public IS 'public, commented'",
        "COMMENT ON TABLE shop.orders IS 'orders'",
        "COMMENT ON COLUMN shop.orders.item IS 'what'",
        "COMMENT ON INDEX shop.orders_by_item IS 'by item'",
        "COMMENT ON CONSTRAINT orders_pkey ON shop.orders IS 'the key'",
        "COMMENT ON TRIGGER people_touch ON shop.persons IS 'touches'",
        "COMMENT ON POLICY orders_visible ON shop.orders IS 'visible'",
        "COMMENT ON FUNCTION shop.touched() IS 'a trigger function'",
        "COMMENT ON TYPE shop.feeling IS 'feelings'",
        "COMMENT ON DOMAIN shop.positive IS 'above zero'",
        "COMMENT ON VIEW shop.named IS 'names'",
        "COMMENT ON SEQUENCE shop.tally IS 'a tally'",
        "COMMENT ON TABLE shop.orders IS 'orders, again'",
        "COMMENT ON COLUMN shop.orders.item IS NULL",
        // Privileges, flags, definitions replaced.
        "GRANT USAGE ON SCHEMA shop TO {role}",
        "GRANT SELECT ON shop.orders TO {role}",
        "GRANT UPDATE (item) ON shop.orders TO {role}",
        "GRANT EXECUTE ON FUNCTION shop.shown(bigint) TO {role}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA shop GRANT SELECT ON TABLES TO {role}",
        "ALTER TABLE shop.orders NO FORCE ROW LEVEL SECURITY",
        "ALTER TABLE shop.persons DISABLE TRIGGER people_touch",
        "ALTER TABLE shop.orders SET (fillfactor = 70)",
        "ALTER TABLE shop.orders ALTER COLUMN item SET NOT NULL",
        "ALTER TABLE shop.orders ALTER COLUMN item SET DEFAULT 'none'",
        "ALTER DOMAIN shop.positive ADD CONSTRAINT small CHECK (VALUE < 1000)",
        "ALTER SEQUENCE shop.tally INCREMENT BY 5",
        "CREATE OR REPLACE VIEW shop.named AS SELECT id, full_name AS name, mood FROM shop.persons",
        "CREATE OR REPLACE FUNCTION shop.touched() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.id = NEW.id; RETURN NEW; END $$",
        "ALTER POLICY orders_visible ON shop.orders USING (shop.shown(person) AND item <> '')",
        "CREATE EXTENSION IF NOT EXISTS citext SCHEMA shop",
        "ALTER TABLE shop.orders ADD COLUMN note shop.citext",
        // Drops, with and without cascading to objects of other groups.
        "ALTER TABLE shop.orders DROP COLUMN note",
        "DROP EXTENSION citext",
        // An object replaced by another of the same name, in one change.
        "ALTER TABLE shop.orders RENAME TO orders_old; CREATE TABLE shop.orders (id int PRIMARY KEY, item text); COMMENT ON TABLE shop.orders IS 'new'",
        "CREATE TABLE shop.swap (id int); DROP TABLE shop.orders_old CASCADE; ALTER TABLE shop.swap RENAME TO orders_old",
        "DROP TABLE shop.orders; ALTER TABLE shop.orders_old RENAME TO orders",
        "DROP TRIGGER people_touch ON shop.persons",
        "DROP FUNCTION shop.shown(bigint) CASCADE",
        "DROP VIEW shop.named CASCADE",
        "DROP TABLE shop.persons CASCADE",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA shop REVOKE SELECT ON TABLES FROM {role}",
        "REVOKE ALL ON SCHEMA shop FROM {role}",
        "REVOKE ALL ON shop.orders FROM {role}",
        "DROP SCHEMA shop CASCADE",
        "COMMENT ON SCHEMA public IS NULL",
    ]
    .iter()
    .map(|s| s.replace("{role}", role))
    .collect()
}

#[test]
fn the_tracked_snapshot_equals_a_whole_one_after_every_change() {
    let role = TestRole::new("pgx_track", "NOSUPERUSER");
    let db = TestDb::new();
    let steps = steps(&role.name);
    let checked = block_on(async {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let mut tracker = Tracker::new(&mut conn).await.unwrap();
        let mut whole = Snapshot::take(&mut conn).await.unwrap();
        assert_eq!(tracker.snapshot(), &whole);
        let mut checked = 0;
        for step in &steps {
            sqlx::raw_sql(sqlx::AssertSqlSafe(step.clone()))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{step}: {e}"));
            let changes = tracker.refresh(&mut conn).await.unwrap();
            let now = Snapshot::take(&mut conn).await.unwrap();
            assert_eq!(
                tracker.snapshot().diff(&now),
                vec![],
                "after {step}: the tracked snapshot differs from a whole one"
            );
            assert_eq!(
                changes,
                whole.diff(&now),
                "after {step}: the changes reported are not the differences"
            );
            assert!(
                !changes.is_empty(),
                "{step} changed nothing the snapshot sees"
            );
            whole = now;
            checked += 1;
        }
        conn.close().await.unwrap();
        checked
    });
    assert_eq!(checked, steps.len());
}
