//! `pgx add DESC`: a migration pair holding the user's own SQL, given inline, read from files,
//! or, without any, a commented template to fill in.

use std::io::Read as _;
use std::path::Path;

use crate::cli::AddArgs;
use crate::error::{Error, Result};
use crate::migrate::files::{self, NewPair};
use crate::output;
use crate::project::Project;

/// What an up file says before the user fills it in: a valid migration that does nothing.
const UP_TEMPLATE: &str = "\
-- Up migration: the SQL that makes the change, run in one transaction (unless the file starts
-- with `-- no-transaction`). Prefer fully qualified names (public.orders).
";

/// What a down file says before the user fills it in.
const DOWN_TEMPLATE: &str = "\
-- Down migration: the SQL that reverts the up migration exactly (`pgx check` proves it does).
";

pub fn run(project: &Project, args: &AddArgs) -> Result<()> {
    let description = files::file_description(&args.description)?;
    if args.up_file.as_deref().is_some_and(is_stdin)
        && args.down_file.as_deref().is_some_and(is_stdin)
    {
        return Err(Error::Usage(
            "--up-file - and --down-file - cannot both read standard input".into(),
        ));
    }
    let up = sql_of(args.up.as_deref(), args.up_file.as_deref())?;
    let down = sql_of(args.down.as_deref(), args.down_file.as_deref())?;
    let body = |sql: Option<String>, template: &str| {
        let mut text = String::new();
        if args.no_transaction {
            text.push_str("-- no-transaction\n");
        }
        match sql {
            Some(sql) => text.push_str(sql.trim_end()),
            None => text.push_str(template.trim_end()),
        }
        text.push('\n');
        text
    };
    let up = body(up, UP_TEMPLATE);
    let down = body(down, DOWN_TEMPLATE);
    let dir = super::migrations_dir(project, args.place.scope);
    let place = super::place(&args.place);
    if args.dry_run.dry_run {
        let v = files::plan_versions(&dir, 1, place)?[0];
        return output::out(&super::new::dry_run_text(
            &dir,
            &[(v, description.as_str(), &up, &down)],
        ));
    }
    let written = files::write_set(
        &dir,
        &[NewPair {
            description: &description,
            up: &up,
            down: &down,
        }],
        place,
    )?
    .remove(0);
    output::out(&format!(
        "{}\n{}\n",
        written.up.display(),
        written.down.display()
    ))
}

fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// The SQL given inline or in a file (`-`: standard input); `None` when neither is given.
fn sql_of(inline: Option<&str>, file: Option<&Path>) -> Result<Option<String>> {
    match (inline, file) {
        (Some(sql), _) => Ok(Some(sql.to_string())),
        (None, Some(path)) if is_stdin(path) => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Error::io("read", "standard input", e))?;
            Ok(Some(text))
        }
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(Some)
            .map_err(|e| Error::io("read", path, e)),
        (None, None) => Ok(None),
    }
}
