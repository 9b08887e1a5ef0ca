//! Help text is complete and consistent: every command and argument described, `-V` on `pgx`
//! only, shared options declared (and documented) once and listed after a command's own in one
//! order.

use clap::CommandFactory;
use pgx::cli::{Cli, SHARED_OPTION_ORDER};

/// Every command and argument is described, and only `pgx` itself has `-V`.
#[test]
fn everything_is_documented() {
    fn walk(cmd: &clap::Command, path: &str, top: bool) -> usize {
        let mut seen = 1;
        assert!(cmd.get_about().is_some(), "`{path}` has no description");
        assert_eq!(
            cmd.get_arguments().any(|a| a.get_id() == "version"),
            top,
            "`{path}`: -V belongs to pgx only"
        );
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            assert!(
                arg.get_help().is_some(),
                "`{path}`: argument {id} has no description"
            );
        }
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            seen += walk(sub, &format!("{path} {}", sub.get_name()), false);
        }
        seen
    }
    let mut cmd = Cli::command();
    cmd.build();
    let n = walk(&cmd, "pgx", true);
    assert!(n > 20, "walked {n} commands");
}

/// An option several commands share is written once: the same help everywhere, and shared
/// options come after a command's own, in one order.
#[test]
fn shared_options_read_the_same_everywhere() {
    use std::collections::BTreeMap;
    fn walk(cmd: &clap::Command, path: &str, helps: &mut BTreeMap<String, Vec<String>>) {
        let longs: Vec<String> = cmd
            .get_arguments()
            .filter(|a| !a.is_global_set() && !a.is_positional())
            .filter_map(|a| a.get_long().map(str::to_string))
            .filter(|l| l != "help")
            .collect();
        let shared: Vec<&String> = longs
            .iter()
            .filter(|l| SHARED_OPTION_ORDER.contains(&l.as_str()))
            .collect();
        let first_shared = longs
            .iter()
            .position(|l| SHARED_OPTION_ORDER.contains(&l.as_str()));
        if let Some(first) = first_shared {
            assert!(
                longs[first..]
                    .iter()
                    .all(|l| SHARED_OPTION_ORDER.contains(&l.as_str())),
                "`{path}`: shared options must come after the command's own: {longs:?}"
            );
        }
        let rank = |l: &String| SHARED_OPTION_ORDER.iter().position(|s| s == l);
        assert!(
            shared.windows(2).all(|w| rank(w[0]) < rank(w[1])),
            "`{path}`: shared options out of order: {shared:?}"
        );
        for a in cmd.get_arguments() {
            if let (Some(long), Some(help)) = (a.get_long(), a.get_help()) {
                helps
                    .entry(long.to_string())
                    .or_default()
                    .push(help.to_string());
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), helps);
        }
    }
    let mut helps = BTreeMap::new();
    let mut cmd = Cli::command();
    cmd.build();
    walk(&cmd, "pgx", &mut helps);
    for name in [
        "database-url",
        "lock-timeout",
        "json",
        "dry-run",
        "verbose",
        "yes",
    ] {
        let texts = &helps[name];
        assert!(texts.len() > 1, "{name} is shared");
        assert!(
            texts.windows(2).all(|w| w[0] == w[1]),
            "--{name} is documented differently: {texts:?}"
        );
    }
}
