//! The README stays true: CI runs its test command and main job verbatim, the Quickstart and
//! every other shell example run here as written, every YAML example is accepted by pgx (the
//! inference example infers), and it lists no pattern that pgx does not ship. A block no test
//! can run says why in a `<!-- not run by the README test: ... -->` line above it.

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

/// A fenced block of the README: its language, the marker comment on the line before its fence
/// (if any), its first line number, and its text.
struct Block {
    lang: String,
    marker: Option<String>,
    line: usize,
    text: String,
}

fn blocks(readme: &str) -> Vec<Block> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(lang) = lines[i].strip_prefix("```").filter(|l| !l.is_empty()) else {
            i += 1;
            continue;
        };
        let marker = i
            .checked_sub(1)
            .map(|p| lines[p].trim())
            .filter(|l| l.starts_with("<!--"))
            .map(str::to_string);
        let end = (i + 1..lines.len())
            .find(|&j| lines[j].starts_with("```"))
            .expect("README: unterminated code block");
        out.push(Block {
            lang: lang.to_string(),
            marker,
            line: i + 1,
            text: lines[i + 1..end].join("\n"),
        });
        i = end + 1;
    }
    out
}

/// Runs a shell block with `bash -euo pipefail` in a fresh folder, with the pgx under test first
/// on PATH and no database configured (so it uses dev clusters, which are deleted afterwards).
fn run_shell(block: &Block) {
    let dir = tempfile::Builder::new()
        .prefix("pgx-readme-")
        .tempdir()
        .unwrap();
    // The dev cluster's server user (as root, `postgres`) must be able to enter it.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_pgx"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &block.text])
        .current_dir(dir.path())
        .env("PATH", &path)
        .env_remove("DATABASE_URL")
        .env_remove("PGX_TEST_ADMIN_URL")
        .output()
        .unwrap();
    // Delete the clusters the block made, whatever happened.
    let mut projects = Vec::new();
    for entry in walk(dir.path(), 3) {
        if entry.file_name().is_some_and(|n| n == ".pgx") {
            projects.push(entry.parent().unwrap().to_path_buf());
        }
    }
    for project in &projects {
        let _ = std::process::Command::new(env!("CARGO_BIN_EXE_pgx"))
            .arg("--dir")
            .arg(project)
            .args(["dev", "reset", "--yes"])
            .output();
    }
    assert!(
        out.status.success(),
        "README.md line {}: the shell block failed:\n{}\nstdout:\n{}\nstderr:\n{}",
        block.line,
        block.text,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn walk(dir: &std::path::Path, depth: usize) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(p.clone());
            if depth > 0 {
                out.extend(walk(&p, depth - 1));
            }
        }
    }
    out
}

/// Blocks CI runs itself, or that say why no test runs them.
fn run_elsewhere(b: &Block) -> bool {
    b.marker.as_deref().is_some_and(|m| {
        m == "<!-- main-job -->"
            || m == "<!-- tests -->"
            || m.starts_with("<!-- not run by the README test:")
    })
}

#[test]
fn the_quickstart_runs_as_written() {
    let readme = read("README.md");
    let start = readme.find("## Quickstart").unwrap();
    let line = readme[..start].lines().count() + 1;
    let quickstart = blocks(&readme)
        .into_iter()
        .find(|b| b.line > line && b.lang == "sh")
        .unwrap();
    assert!(
        quickstart.text.contains("pgx init myapp"),
        "{}",
        quickstart.text
    );
    run_shell(&quickstart);
}

#[test]
fn every_other_shell_example_runs_as_written() {
    let readme = read("README.md");
    let quickstart = readme[..readme.find("## Quickstart").unwrap()]
        .lines()
        .count()
        + 1;
    let all = blocks(&readme);
    let quickstart_line = all
        .iter()
        .find(|b| b.line > quickstart && b.lang == "sh")
        .map(|b| b.line);
    let others: Vec<&Block> = all
        .iter()
        .filter(|b| b.lang == "sh" && !run_elsewhere(b) && Some(b.line) != quickstart_line)
        .collect();
    assert!(!others.is_empty(), "the adoption example at least");
    std::thread::scope(|s| {
        for b in &others {
            s.spawn(|| run_shell(b));
        }
    });
}

/// Stub templates for every template a spec names, so the spec itself is what is tested.
fn stub_templates(p: &crate::support::Project, spec: &serde_yaml::Value) {
    if let Some(t) = spec.get("templates") {
        for key in ["up", "down"] {
            if let Some(path) = t.get(key).and_then(|v| v.as_str()) {
                p.write(&format!("templates/{path}"), "SELECT 1;\n");
            }
        }
    }
}

#[test]
fn every_yaml_example_is_accepted_and_the_inference_example_infers() {
    use crate::support::{Project, TestDb};
    let readme = read("README.md");
    let p = Project::new();
    let mut specs = Vec::new();
    let mut fragments = Vec::new();
    let mut configs = 0;
    for b in blocks(&readme)
        .into_iter()
        .filter(|b| b.lang == "yaml" && !run_elsewhere(b))
    {
        let value: serde_yaml::Value = serde_yaml::from_str(&b.text)
            .unwrap_or_else(|e| panic!("README.md line {}: not YAML: {e}", b.line));
        let keys: Vec<&str> = value
            .as_mapping()
            .map(|m| m.keys().filter_map(|k| k.as_str()).collect())
            .unwrap_or_default();
        if keys.contains(&"name") && keys.contains(&"templates") {
            let name = value["name"].as_str().unwrap().to_string();
            p.write(&format!("patterns/{name}.yaml"), &b.text);
            stub_templates(&p, &value);
            specs.push((
                name,
                value.get("target").and_then(|t| t.as_str()) != Some("none"),
            ));
        } else if keys == ["parameters"] {
            fragments.push(b.text.clone());
        } else if keys.contains(&"migrations") {
            let dir = Project::empty();
            dir.write("pgx.yaml", &b.text);
            dir.pgx().arg("patterns").ok();
            pgx::project::Project::open(dir.path())
                .unwrap_or_else(|e| panic!("README.md line {}: {e}", b.line));
            configs += 1;
        } else {
            panic!(
                "README.md line {}: a YAML block that is neither a pattern spec, a parameter list nor pgx.yaml; mark it <!-- not run by the README test: why -->",
                b.line
            );
        }
    }
    assert!(
        specs.len() >= 3 && configs == 1 && !fragments.is_empty(),
        "{specs:?}"
    );
    for (name, on_table) in &specs {
        p.pgx().args(["patterns", "show", name]).ok();
        let mut cmd = p.pgx().args(["new", name]);
        if *on_table {
            cmd = cmd.arg("orders");
        }
        let set = if name == "comment" {
            vec!["--set", "text=x"]
        } else {
            vec![]
        };
        cmd.args(set).args(["--offline", "--dry-run"]).ok();
    }
    // A spec that needs shared infrastructure writes its installation first.
    if specs.iter().any(|(n, _)| n == "counted") {
        p.pgx()
            .args(["new", "counted", "orders", "--offline", "--dry-run"])
            .ok()
            .stdout_has("_counter_install.up.sql");
    }
    // Parameter lists, in a spec of their own, inferred against a real table.
    let db = TestDb::new();
    db.exec("CREATE TABLE orders (region int, id bigint, PRIMARY KEY (region, id))");
    for (i, fragment) in fragments.iter().enumerate() {
        let name = format!("readme_fragment_{i}");
        p.write(
            &format!("patterns/{name}.yaml"),
            &format!(
                "name: {name}\nsummary: parameters from the README\ntemplates: {{up: frag/up.sql.tera, down: frag/down.sql.tera}}\n{fragment}\n"
            ),
        );
        p.write("templates/frag/up.sql.tera", "SELECT 1;\n");
        p.write("templates/frag/down.sql.tera", "SELECT 1;\n");
        let run = p
            .pgx()
            .db(&db)
            .args(["new", &name, "orders", "--dry-run"])
            .ok();
        if fragment.contains("infer:") {
            run.stderr_has("inferred key=region,id: the primary key of public.orders");
            run.stdout_has("-- param key = [\"region\",\"id\"]");
        }
    }
}
