//! The schema of an existing database, as `pg_dump --schema-only` writes it, for `pgx baseline`:
//! the statements that create it, and (from the same archive, `pg_restore --clean`) the ones that
//! drop it, in dependency order.
//!
//! The drops are of whole objects only: what dies with its table (constraints other than foreign
//! keys, indexes, triggers, policies, rules) is left to the table's DROP, because pg_restore's
//! separate drops of those fail on partitions (a partition's inherited key cannot be dropped).
//!
//! `pg_dump` and `pg_restore` are found where the dev cluster finds `initdb`, in the server's
//! major version (or newer). The password never appears on their command line (other users can
//! read that): the URL is passed without it, the password in `PGPASSWORD`.

use std::path::Path;
use std::process::{Command, Stdio};

use super::dev::find_client_tool;
use super::url::DbUrl;
use crate::error::{Error, Result, one_line};

/// What to dump.
#[derive(Debug, Clone, Default)]
pub struct DumpOptions {
    /// Only these schemas (all but the system ones when empty).
    pub schemas: Vec<String>,
    /// Leave GRANT and REVOKE statements out (roles are cluster-wide and may not exist where
    /// the migration is applied).
    pub no_privileges: bool,
    /// Tables to leave out, as pg_dump patterns (`*._sqlx_migrations`).
    pub exclude_tables: Vec<String>,
}

/// pg_restore's two renderings of one dump.
#[derive(Debug, Clone)]
pub struct SchemaDump {
    /// The plain script: everything created, in dependency order.
    pub create: String,
    /// The `--clean --if-exists` script of the objects that are not parts of a table (see the
    /// module's doc): their DROP statements, then their CREATE statements.
    pub clean: String,
    /// `pg_dump (PostgreSQL) 15.13`, as `--version` says.
    pub dumped_by: String,
}

/// Dumps the schema of the database at `url`, a server of major version `server_major`.
pub fn dump_schema(url: &DbUrl, server_major: u32, options: &DumpOptions) -> Result<SchemaDump> {
    let pg_dump = find_client_tool("pg_dump", server_major)?;
    let pg_restore = find_client_tool("pg_restore", server_major)?;
    let archive = tempfile::Builder::new()
        .prefix("pgx-baseline-")
        .suffix(".dump")
        .tempfile()
        .map_err(|e| Error::io("create a temporary file in", std::env::temp_dir(), e))?;
    let mut cmd = client(&pg_dump, url)?;
    cmd.args(["--schema-only", "--format=custom", "--no-password"])
        .arg("--file")
        .arg(archive.path());
    for s in &options.schemas {
        cmd.arg(format!("--schema={s}"));
    }
    for t in &options.exclude_tables {
        cmd.arg(format!("--exclude-table={t}"));
    }
    cmd.arg(without_password(url)?);
    run(cmd, &pg_dump, url)?;

    let restore = |extra: &[&std::ffi::OsStr]| -> Result<String> {
        let mut cmd = client(&pg_restore, url)?;
        cmd.args(["--no-owner", "--file=-"]);
        if options.no_privileges {
            cmd.arg("--no-privileges");
        }
        cmd.args(extra).arg(archive.path());
        run(cmd, &pg_restore, url)
    };
    let create = restore(&[])?;
    let toc = restore(&["--list".as_ref()])?;
    let whole = tempfile::Builder::new()
        .prefix("pgx-baseline-")
        .suffix(".list")
        .tempfile()
        .map_err(|e| Error::io("create a temporary file in", std::env::temp_dir(), e))?;
    std::fs::write(whole.path(), whole_objects(&toc))
        .map_err(|e| Error::io("write", whole.path(), e))?;
    let clean = restore(&[
        "--clean".as_ref(),
        "--if-exists".as_ref(),
        "--use-list".as_ref(),
        whole.path().as_os_str(),
    ])?;
    let mut version = Command::new(&pg_dump);
    version.arg("--version");
    let dumped_by = run(version, &pg_dump, url)?.trim().to_string();
    Ok(SchemaDump {
        create,
        clean,
        dumped_by,
    })
}

/// Entry types of a pg_restore table of contents that are parts of a table: dropped with it.
const PARTS_OF_TABLES: &[&str] = &[
    "CONSTRAINT ",
    "CHECK CONSTRAINT ",
    "INDEX ",
    "INDEX ATTACH ",
    "TRIGGER ",
    "POLICY ",
    "RULE ",
    "ROW SECURITY ",
];

/// The table of contents (`pg_restore --list`) without the entries that are parts of a table.
/// An entry reads `ID; CATALOG OID TYPE SCHEMA NAME OWNER`; lines starting with `;` are comments.
fn whole_objects(toc: &str) -> String {
    toc.lines()
        .filter(|line| {
            let Some((_, rest)) = line.split_once("; ") else {
                return true;
            };
            let mut words = rest.splitn(3, ' ');
            let kind = words.nth(2).unwrap_or_default();
            line.starts_with(';') || !PARTS_OF_TABLES.iter().any(|p| kind.starts_with(p))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A client program with the URL's password in its environment, never on its command line.
fn client(program: &Path, url: &DbUrl) -> Result<Command> {
    let mut cmd = Command::new(program);
    cmd.stdin(Stdio::null())
        .env("PGAPPNAME", "pgx baseline")
        .env_remove("PGPASSWORD")
        .env_remove("PGSERVICE");
    if let Some(pw) = url.password() {
        cmd.env("PGPASSWORD", pw);
    }
    Ok(cmd)
}

/// The URL as libpq reads it, without its password.
fn without_password(url: &DbUrl) -> Result<String> {
    let mut parsed = url::Url::parse(url.expose()).map_err(|_| {
        // `check` was called when the database was connected to; this cannot happen.
        Error::DatabaseUrl {
            reason: "it does not parse as a URL".into(),
            origin: url.from_where(),
        }
    })?;
    let _ = parsed.set_password(None);
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| k != "password")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if pairs.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    Ok(parsed.to_string())
}

fn run(mut cmd: Command, program: &Path, url: &DbUrl) -> Result<String> {
    let name = program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let out = cmd.output().map_err(|e| Error::Database {
        context: format!("cannot run {}", program.display()),
        message: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(Error::Database {
            context: format!("{name} failed{}", url.from_where()),
            message: url.scrub(&one_line(&String::from_utf8_lossy(&out.stderr))),
        });
    }
    String::from_utf8(out.stdout).map_err(|_| Error::Database {
        context: format!("{name} failed"),
        message: "its output is not UTF-8".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_tables_are_left_to_their_table() {
        let toc = ";\n; Archive created\n;\n219; 1259 177229 TABLE public customer postgres\n3284; 2606 177238 CONSTRAINT public customer customer_pkey postgres\n3298; 2606 177251 FK CONSTRAINT public payment payment_customer_id_fkey postgres\n3294; 0 0 INDEX ATTACH public payment_p2022_01_customer_id_idx postgres\n3282; 1259 177226 INDEX public idx_title postgres\n3300; 2620 177239 TRIGGER public customer last_updated postgres\n3274; 2604 177232 DEFAULT public customer customer_id postgres\n";
        let kept = whole_objects(toc);
        assert!(kept.contains("TABLE public customer"), "{kept}");
        assert!(kept.contains("FK CONSTRAINT"), "{kept}");
        assert!(kept.contains("DEFAULT public customer"), "{kept}");
        assert!(kept.contains("; Archive created"), "{kept}");
        for gone in ["customer_pkey", "INDEX ATTACH", "idx_title", "TRIGGER"] {
            assert!(!kept.contains(gone), "{gone}: {kept}");
        }
    }

    #[test]
    fn passwords_stay_off_the_command_line() {
        let u = DbUrl::new("postgres://app:s3cret@db:5432/prod?password=other&sslmode=require");
        let shown = without_password(&u).unwrap();
        assert_eq!(shown, "postgres://app@db:5432/prod?sslmode=require");
    }
}
