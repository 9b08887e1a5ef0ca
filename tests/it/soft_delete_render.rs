//! What `pgx new soft_delete` writes: rendering snapshots (`tests/it/snapshots/soft_delete*`,
//! `PGX_BLESS=1` rewrites them), and parameters refused before anything is written.

use crate::snapshots::check;
use crate::support::Project;

#[test]
fn install_and_default_rendering() {
    check(
        "soft_delete_install",
        "soft_delete_install",
        "public",
        None,
        &[],
    );
    check("soft_delete", "soft_delete", "public", Some("users"), &[]);
}

#[test]
fn every_option_with_hostile_names() {
    check(
        "soft_delete_hostile",
        "soft_delete",
        "Sales Dept",
        Some("order's \"items\""),
        &[
            ("column", "removed at"),
            ("deleted_by", "by$pgx$"),
            ("actor_setting", "app.who"),
            ("actor_type", "uuid"),
            ("unique", "sku,Order Code"),
            ("view", "live; drop table x"),
            ("hide", "policy"),
            ("role", "App Role"),
            ("live_indexes", "sku"),
            ("soft_delete_schema", "Soft Delete"),
        ],
    );
}

#[test]
fn concurrently_renders_one_statement_per_index_step() {
    check(
        "soft_delete_concurrently",
        "soft_delete",
        "public",
        Some("users"),
        &[
            ("live_indexes", "name,email"),
            ("concurrently", "true"),
            ("intercept", "false"),
            ("unique", "none"),
            ("add_column", "false"),
        ],
    );
}

#[test]
fn bad_parameters_fail_with_one_line_and_write_nothing() {
    let p = Project::new();
    for (sets, message) in [
        (
            vec!["hide=policy"],
            "hide=policy needs the role to hide soft-deleted rows from",
        ),
        (vec!["role=app"], "it needs --set hide=policy"),
        (
            vec!["concurrently=true"],
            "concurrently builds the live_indexes; there are none",
        ),
        (
            vec!["unique=all,email"],
            "unique is `all`, `none`, or a list",
        ),
        (
            vec!["deleted_by=deleted_at"],
            "deleted_by must name another column than column",
        ),
        (
            vec!["actor_setting=user"],
            "actor_setting must be a custom setting named prefix.name",
        ),
        (vec!["actor_type=json"], "actor_type"),
        (vec!["intercept=maybe"], "intercept"),
    ] {
        let mut args = vec!["new", "soft_delete", "users"];
        for s in &sets {
            args.extend(["--set", s]);
        }
        p.pgx().args(&args).fails().stderr_has(message);
        assert_eq!(p.files("migrations"), Vec::<String>::new(), "{sets:?}");
    }
    p.pgx()
        .args(["new", "soft_delete", "users", "--scope", "tenant"])
        .fails()
        .stderr_has("render it without --scope tenant");
    p.pgx()
        .args(["new", "soft_delete"])
        .fails()
        .stderr_has("needs a table");
}
