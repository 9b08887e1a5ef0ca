//! The README's set-up commands stay true: CI runs the test command verbatim, and the README
//! lists no pattern that pgx does not ship.

fn read(rel: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

/// The first ```sh block after `marker`.
fn block_after(text: &str, marker: &str) -> String {
    let rest = &text[text
        .find(marker)
        .unwrap_or_else(|| panic!("README lacks {marker}"))..];
    let start = rest.find("```sh\n").unwrap() + "```sh\n".len();
    let end = rest[start..].find("```").unwrap();
    rest[start..start + end].trim().to_string()
}

#[test]
fn ci_runs_the_readme_test_command_and_main_job() {
    let readme = read("README.md");
    let ci = read(".ci/run");
    let tests = block_after(&readme, "<!-- tests -->");
    assert_eq!(tests.lines().count(), 1, "one test command: {tests}");
    assert!(
        ci.lines().any(|l| l.trim() == tests),
        ".ci/run must run `{tests}` verbatim"
    );
    assert!(
        ci.contains("<!-- main-job -->"),
        ".ci/run must run the README's main-job command"
    );
    let main_job = block_after(&readme, "<!-- main-job -->");
    assert_eq!(main_job.lines().count(), 1, "one main-job command");
    for step in [
        "pgx init",
        "pgx new",
        "pgx migrate up",
        "pgx migrate status",
    ] {
        assert!(main_job.contains(step), "main job lacks {step}");
    }
}

#[test]
fn readme_lists_only_shipped_patterns() {
    let readme = read("README.md");
    let catalog = pgx::pattern::Catalog::builtin().unwrap();
    let section = &readme[readme.find("## Patterns that work today").unwrap()..];
    let section = &section[..section[3..].find("\n## ").unwrap()];
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let name = line.split('`').nth(1).unwrap();
        catalog
            .get(name)
            .unwrap_or_else(|e| panic!("README lists {name}: {e}"));
    }
    for p in catalog.patterns() {
        assert!(
            section.contains(&format!("| `{}` |", p.name)),
            "README does not list {}",
            p.name
        );
    }
}
