//! `pgx add DESC`: a migration pair holding the user's own SQL.

use crate::cli::AddArgs;
use crate::error::Result;
use crate::migrate::files;
use crate::output;
use crate::project::Project;

pub fn run(project: &Project, args: &AddArgs) -> Result<()> {
    let description = files::file_description(&args.description)?;
    let body = |sql: Option<&String>| {
        let mut text = String::new();
        if args.no_transaction {
            text.push_str("-- no-transaction\n");
        }
        if let Some(sql) = sql {
            text.push_str(sql.trim_end());
            text.push('\n');
        }
        text
    };
    let written = files::write_pair(
        &super::migrations_dir(project, args.scope),
        &description,
        &body(args.up.as_ref()),
        &body(args.down.as_ref()),
    )?;
    output::out(&format!(
        "{}\n{}\n",
        written.up.display(),
        written.down.display()
    ))
}
