use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = pgx::cli::Cli::parse();
    match pgx::commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: the error, then each cause (an I/O error's OS message, say).
            let mut line = format!("error: {err}");
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                line.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("{}", pgx::error::one_line(&line));
            ExitCode::from(err.exit_code())
        }
    }
}
