//! The `timestamps` pattern, end to end on the real database.

use crate::support::{Project, TestDb};

const ORDERS: &str =
    "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, item text NOT NULL);";

#[test]
fn up_sets_columns_trigger_keeps_updated_at_current_and_down_restores_schema() {
    let db = TestDb::new();
    let p = Project::new();
    p.add("create_orders", ORDERS, "DROP TABLE orders;");
    p.pgx().db(&db).args(["migrate", "up"]).ok();
    db.exec("INSERT INTO orders (item) VALUES ('book')");
    let before = db.snapshot();

    p.pgx().args(["new", "timestamps", "orders"]).ok();
    p.pgx().db(&db).args(["migrate", "up"]).ok();

    // Existing rows get the migration time; the trigger moves updated_at on UPDATE only.
    let row = db.rows("SELECT created_at = updated_at FROM orders");
    assert_eq!(row, vec![vec![Some("t".into())]]);
    db.exec("INSERT INTO orders (item) VALUES ('pen')");
    let moved = db.scalar(
        "BEGIN; UPDATE orders SET created_at = now() - interval '1 day', updated_at = now() - interval '1 day' WHERE item = 'pen'; COMMIT;
         SELECT updated_at > created_at FROM orders WHERE item = 'pen'",
    );
    assert_eq!(
        moved.as_deref(),
        Some("t"),
        "UPDATE must not be able to backdate updated_at"
    );
    let after_up = db.snapshot();
    assert!(
        after_up
            .objects
            .contains_key("column public.orders.updated_at")
    );
    assert!(
        after_up
            .objects
            .keys()
            .any(|k| k.starts_with("trigger public.orders."))
    );

    p.pgx().db(&db).args(["migrate", "down"]).ok();
    assert_eq!(
        before.diff(&db.snapshot()),
        vec![],
        "down must restore the schema exactly"
    );

    p.pgx().db(&db).args(["migrate", "up"]).ok();
    assert_eq!(
        after_up.diff(&db.snapshot()),
        vec![],
        "up again must give the same schema"
    );
}
