//! Referential integrity under soft delete: cascades to soft-delete tables (recursively, in
//! one statement), RESTRICT / NO ACTION refusals, exact restores, and hard deletes that never
//! leave soft-deleted rows pointing at nothing.

use crate::soft_delete::{app_role, as_role, ok_as, row_count, soft_deleted};
use crate::support::{TestDb, TestRole};

/// tenants (plain) ← customers ← orders ← items, orders ← payments (RESTRICT), orders ←
/// invoices (plain, NO ACTION), orders ← order_tags (plain, CASCADE), comments ← comments.
const SHOP: &str = "
CREATE TABLE tenants (id int PRIMARY KEY);
CREATE TABLE customers (id int PRIMARY KEY, tenant_id int REFERENCES tenants ON DELETE CASCADE);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers ON DELETE CASCADE);
CREATE TABLE items (id int PRIMARY KEY, order_id int NOT NULL REFERENCES orders ON DELETE CASCADE);
CREATE TABLE payments (id int PRIMARY KEY, order_id int REFERENCES orders ON DELETE RESTRICT);
CREATE TABLE invoices (id int PRIMARY KEY, order_id int REFERENCES orders);
CREATE TABLE order_tags (order_id int REFERENCES orders ON DELETE CASCADE, tag text);
CREATE TABLE comments (id int PRIMARY KEY, parent_id int REFERENCES comments ON DELETE CASCADE);
INSERT INTO tenants VALUES (1), (2);
INSERT INTO customers VALUES (1, 1), (2, 1), (3, 2);
INSERT INTO orders VALUES (10, 1), (11, 1), (20, 2), (30, 3);
INSERT INTO items VALUES (100, 10), (101, 10), (110, 11), (200, 20), (300, 30);
INSERT INTO order_tags VALUES (10, 'gift');
INSERT INTO comments VALUES (1, NULL), (2, 1), (3, 2), (4, NULL);
";

const SOFT: [&str; 5] = ["customers", "orders", "items", "payments", "comments"];

/// The shop, every soft-delete table made one, and an application role with DML on all of it.
fn shop(db: &TestDb) -> TestRole {
    let app = app_role();
    let tables: Vec<(&str, &[&str])> = SOFT.iter().map(|t| (*t, &[][..])).collect();
    soft_deleted(
        db,
        &format!(
            "{SHOP} GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {};",
            app.name
        ),
        &tables,
    );
    app
}

/// `table:id` of every soft-deleted row of the soft-delete tables, in order.
fn deleted(db: &TestDb) -> Vec<String> {
    let union = SOFT
        .iter()
        .map(|t| format!("SELECT '{t}:' || id AS r FROM {t} WHERE deleted_at IS NOT NULL"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    db.column(&format!("{union} ORDER BY 1"))
}

#[test]
fn a_soft_delete_cascades_in_one_statement_and_restore_brings_back_exactly_its_rows() {
    let db = TestDb::new();
    let app = shop(&db);
    // An item deleted on its own, earlier.
    ok_as(&db, &app, "DELETE FROM items WHERE id = 101");
    let earlier = db.scalar("SELECT deleted_at FROM items WHERE id = 101");

    assert_eq!(
        row_count(&db, Some(&app), "", "DELETE FROM customers WHERE id = 1"),
        1,
        "the statement counts the rows of its own table"
    );
    assert_eq!(
        deleted(&db),
        [
            "customers:1",
            "items:100",
            "items:101",
            "items:110",
            "orders:10",
            "orders:11"
        ]
    );
    assert_eq!(
        db.scalar(
            "SELECT count(DISTINCT deleted_at) FROM (
                 SELECT deleted_at FROM customers WHERE id = 1 UNION ALL
                 SELECT deleted_at FROM orders WHERE customer_id = 1 UNION ALL
                 SELECT deleted_at FROM items WHERE id IN (100, 110)) d"
        )
        .as_deref(),
        Some("1"),
        "one delete, one time, down the whole tree"
    );
    assert_eq!(
        db.scalar("SELECT deleted_at FROM items WHERE id = 101"),
        earlier
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM order_tags").as_deref(),
        Some("1"),
        "rows of plain tables stay: their parent row still exists"
    );

    // Restore brings back what that delete cascaded to, not the item deleted before.
    assert_eq!(
        ok_as(&db, &app, "SELECT customers_restore(1)")[0][0].as_deref(),
        Some("t")
    );
    assert_eq!(deleted(&db), ["items:101"]);
    assert_eq!(
        db.scalar("SELECT deleted_at FROM items WHERE id = 101"),
        earlier
    );
    ok_as(&db, &app, "SELECT items_restore(101)");
    assert_eq!(deleted(&db), Vec::<String>::new());

    // Deleting a middle row cascades down only; restoring it restores its subtree.
    ok_as(&db, &app, "DELETE FROM orders WHERE id = 10");
    assert_eq!(deleted(&db), ["items:100", "items:101", "orders:10"]);
    ok_as(
        &db,
        &app,
        "UPDATE orders SET deleted_at = NULL WHERE id = 10",
    );
    assert_eq!(
        deleted(&db),
        Vec::<String>::new(),
        "a plain UPDATE restores just like the function"
    );

    // A tree in one table: the whole branch goes, and comes back.
    ok_as(&db, &app, "DELETE FROM comments WHERE id = 1");
    assert_eq!(deleted(&db), ["comments:1", "comments:2", "comments:3"]);
    ok_as(&db, &app, "SELECT comments_restore(1)");
    assert_eq!(deleted(&db), Vec::<String>::new());
}

#[test]
fn restrict_and_no_action_refuse_while_live_rows_reference_the_deleted_ones() {
    let db = TestDb::new();
    let app = shop(&db);
    db.exec("INSERT INTO payments VALUES (1, 20); INSERT INTO invoices VALUES (1, 30);");

    let err = as_role(&db, &app, "DELETE FROM orders WHERE id = 20").unwrap_err();
    assert!(
        err.contains("cannot delete from public.orders: live rows of public.payments reference it through foreign key payments_order_id_fkey (ON DELETE RESTRICT)"),
        "{err}"
    );
    // Also when the delete reaches the order through a cascade: nothing changes at all.
    let err = as_role(&db, &app, "DELETE FROM customers WHERE id = 2").unwrap_err();
    assert!(err.contains("payments_order_id_fkey"), "{err}");
    let err = as_role(&db, &app, "DELETE FROM orders WHERE id = 30").unwrap_err();
    assert!(
        err.contains("live rows of public.invoices reference it through foreign key invoices_order_id_fkey (ON DELETE NO ACTION)"),
        "{err}"
    );
    assert_eq!(deleted(&db), Vec::<String>::new());

    // A soft-deleted payment no longer holds its order back.
    ok_as(&db, &app, "DELETE FROM payments WHERE id = 1");
    ok_as(&db, &app, "DELETE FROM customers WHERE id = 2");
    assert_eq!(
        deleted(&db),
        ["customers:2", "items:200", "orders:20", "payments:1"]
    );
    // ... but its order's restore does not bring it back: it was deleted before, on its own.
    ok_as(&db, &app, "SELECT customers_restore(2)");
    assert_eq!(deleted(&db), ["payments:1"]);
}

#[test]
fn a_row_cannot_be_restored_under_a_soft_deleted_parent() {
    let db = TestDb::new();
    let app = shop(&db);
    ok_as(&db, &app, "DELETE FROM orders WHERE id = 10");
    let err = as_role(&db, &app, "SELECT items_restore(100)").unwrap_err();
    assert!(
        err.contains("cannot restore rows of public.items: they reference soft-deleted rows of public.orders through foreign key items_order_id_fkey"),
        "{err}"
    );
    assert_eq!(deleted(&db), ["items:100", "items:101", "orders:10"]);
}

#[test]
fn hard_deletes_never_leave_soft_deleted_rows_pointing_at_nothing() {
    let db = TestDb::new();
    let app = shop(&db);
    // Tenant 2's customer is soft-deleted (with its order and item).
    ok_as(&db, &app, "DELETE FROM customers WHERE id = 3");

    // A plain parent's own ON DELETE CASCADE would only soft-delete the customers (PostgreSQL
    // runs a cascade through rules too): refused, for live and soft-deleted children alike.
    for tenant in [1, 2] {
        let err = as_role(
            &db,
            &app,
            &format!("DELETE FROM tenants WHERE id = {tenant}"),
        )
        .unwrap_err();
        assert!(
            err.contains("cannot delete rows of public.tenants for real: rows of public.customers reference them through foreign key customers_tenant_id_fkey (ON DELETE CASCADE)"),
            "tenant {tenant}: {err}"
        );
    }

    // Purging the soft-deleted customer removes the rows its cascade reaches, for real, so
    // the tenant can go.
    db.exec("UPDATE customers SET deleted_at = deleted_at - interval '1 day' WHERE id = 3");
    assert_eq!(
        db.scalar("SELECT customers_purge('1 hour')").as_deref(),
        Some("1")
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM orders WHERE customer_id = 3")
            .as_deref(),
        Some("0")
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM items WHERE order_id = 30")
            .as_deref(),
        Some("0")
    );
    assert_eq!(
        row_count(&db, Some(&app), "", "DELETE FROM tenants WHERE id = 2"),
        1
    );
    // Every rule is on again.
    assert_eq!(
        db.column("SELECT ev_class::regclass::text FROM pg_rewrite WHERE rulename = 'soft_delete' AND ev_enabled <> 'O'"),
        Vec::<String>::new()
    );
    // No row anywhere points at nothing.
    let orphans = db.scalar(
        "SELECT (SELECT count(*) FROM customers c WHERE c.tenant_id IS NOT NULL AND NOT EXISTS (SELECT FROM tenants t WHERE t.id = c.tenant_id))
              + (SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT FROM customers c WHERE c.id = o.customer_id))
              + (SELECT count(*) FROM items i WHERE NOT EXISTS (SELECT FROM orders o WHERE o.id = i.order_id))",
    );
    assert_eq!(orphans.as_deref(), Some("0"));
}

#[test]
fn another_owners_table_is_never_touched_by_a_cascade() {
    let db = TestDb::new();
    let app = shop(&db);
    // A weaker role that may reference orders builds a table that looks like a soft-delete
    // child, with a trigger of its own meant to run as whoever soft-deletes an order.
    let weak = TestRole::new("pgx_weak", "NOSUPERUSER NOBYPASSRLS");
    db.exec(&format!(
        "GRANT REFERENCES, SELECT ON orders TO {0}; GRANT CREATE ON SCHEMA public TO {0};",
        weak.name
    ));
    ok_as(
        &db,
        &weak,
        "CREATE TABLE lure (id int PRIMARY KEY, order_id int REFERENCES orders ON DELETE CASCADE, deleted_at timestamptz);
         CREATE TABLE caught (who text);
         GRANT INSERT ON caught TO PUBLIC;
         CREATE FUNCTION bait() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO caught VALUES (current_user); RETURN NULL; END $$;
         CREATE TRIGGER bait AFTER UPDATE ON lure FOR EACH STATEMENT EXECUTE FUNCTION bait();
         CREATE TRIGGER soft_delete_cascade AFTER UPDATE ON lure REFERENCING OLD TABLE AS pgx_old NEW TABLE AS pgx_new
             FOR EACH STATEMENT EXECUTE FUNCTION soft_delete.on_update('deleted_at', '', 'app.user_id', 'bigint', '');
         INSERT INTO lure VALUES (1, 10);",
    );
    ok_as(&db, &app, "DELETE FROM orders WHERE id = 10");
    db.exec("DELETE FROM orders WHERE id = 11");
    assert_eq!(
        db.scalar("SELECT count(*) FROM caught").as_deref(),
        Some("0"),
        "no code of the weaker role ran"
    );
    assert_eq!(
        db.scalar("SELECT deleted_at IS NULL FROM lure").as_deref(),
        Some("t")
    );
}
