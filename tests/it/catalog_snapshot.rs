//! The catalog snapshot sees what a down migration can forget, and nothing that is only noise.

use crate::support::{TestDb, TestRole};

#[test]
fn grants_count_and_a_grant_revoked_again_is_no_difference() {
    let role = TestRole::new("pgx_snap", "NOSUPERUSER");
    let db = TestDb::new();
    db.exec("CREATE TABLE t (id int); CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'");
    let before = db.snapshot();
    db.exec(&format!(
        "GRANT SELECT ON t TO {r}; GRANT EXECUTE ON FUNCTION f() TO {r}",
        r = role.name
    ));
    let objects: Vec<String> = before
        .diff(&db.snapshot())
        .into_iter()
        .map(|d| d.object)
        .collect();
    assert_eq!(objects, ["function public.f()", "relation public.t"]);
    db.exec(&format!(
        "REVOKE SELECT ON t FROM {r}; REVOKE EXECUTE ON FUNCTION f() FROM {r}",
        r = role.name
    ));
    assert_eq!(before.diff(&db.snapshot()), vec![]);
}

#[test]
fn not_valid_constraints_and_rls_flags_and_policies_are_seen() {
    let db = TestDb::new();
    db.exec("CREATE TABLE t (id int)");
    let before = db.snapshot();
    db.exec("ALTER TABLE t ADD CONSTRAINT pos CHECK (id > 0) NOT VALID");
    let after = db.snapshot();
    assert_eq!(
        after.objects["constraint public.t.pos"],
        "CHECK ((id > 0)) NOT VALID"
    );
    db.exec("ALTER TABLE t VALIDATE CONSTRAINT pos");
    assert_eq!(
        db.snapshot().objects["constraint public.t.pos"],
        "CHECK ((id > 0))"
    );
    db.exec("ALTER TABLE t DROP CONSTRAINT pos; ALTER TABLE t ENABLE ROW LEVEL SECURITY; CREATE POLICY p ON t USING (id = 1)");
    let diff: Vec<String> = before
        .diff(&db.snapshot())
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(diff.len(), 2, "{diff:?}");
    assert!(
        diff[0].starts_with("policy public.t.p is left over"),
        "{diff:?}"
    );
    assert!(
        diff[1].starts_with("relation public.t differs") && diff[1].contains("row-security"),
        "{diff:?}"
    );
}
