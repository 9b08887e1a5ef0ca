//! The `tenant` down migration gives a table back the row security it had before the up: a
//! table whose row security was already enabled, forced, or both, keeps it after the down, as
//! the catalog says (not only as a snapshot says).

use crate::support::TestDb;
use crate::tenant_support::*;

/// (relrowsecurity, relforcerowsecurity) of `orders`.
fn row_security(db: &TestDb) -> (String, String) {
    let rows = db.rows(
        "SELECT relrowsecurity::text, relforcerowsecurity::text FROM pg_class WHERE oid = 'orders'::regclass",
    );
    (
        rows[0][0].clone().unwrap_or_default(),
        rows[0][1].clone().unwrap_or_default(),
    )
}

#[test]
fn down_restores_row_security_that_was_enabled_or_forced_before_the_up() {
    let states = [
        ("ENABLE ROW LEVEL SECURITY", ("true", "false")),
        ("FORCE ROW LEVEL SECURITY", ("false", "true")),
        (
            "ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY",
            ("true", "true"),
        ),
    ];
    let mut checked = 0;
    for (alter, (enabled, forced)) in states {
        let db = TestDb::new();
        let app = app_role();
        let p = orders_owned_by(&db, &app);
        db.exec(&format!("ALTER TABLE orders {alter}"));
        let expected = (enabled.to_string(), forced.to_string());
        assert_eq!(row_security(&db), expected, "{alter}: set up");
        let before = db.snapshot();

        new_tenant(&p, "orders", &[]);
        p.pgx().db(&db).args(["migrate", "up"]).ok();
        assert_eq!(
            row_security(&db),
            ("true".to_string(), "true".to_string()),
            "{alter}: the up enables and forces"
        );
        seed(&db);
        // Isolation holds for the owner meanwhile (forced).
        assert_eq!(
            column_as(
                &db,
                &app,
                &format!("{} SELECT count(*) FROM orders", tenant_of(A))
            ),
            ["2"],
            "{alter}"
        );
        db.exec("DELETE FROM orders");

        p.pgx().db(&db).args(["migrate", "down"]).ok();
        assert_eq!(row_security(&db), expected, "{alter}: the down restores");
        assert_eq!(restored(&before, &db.snapshot()), vec![], "{alter}");
        checked += 1;
    }
    assert_eq!(checked, states.len());
}
