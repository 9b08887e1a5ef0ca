//! `pgx completions SHELL` and `pgx man`: generated from the same clap definitions as `--help`,
//! so they cannot drift from it.

use std::path::Path;

use clap::CommandFactory as _;

use crate::cli::Cli;
use crate::error::{Error, Result};
use crate::output;

pub fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "pgx", &mut buf);
    output::out(&String::from_utf8_lossy(&buf))
}

pub fn man(out_dir: Option<&Path>) -> Result<()> {
    if let Some(dir) = out_dir {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        return clap_mangen::generate_to(Cli::command(), dir)
            .map_err(|e| Error::io("write manual pages into", dir, e));
    }
    let mut buf: Vec<u8> = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut buf)
        .map_err(|e| Error::io("render the manual page to", "stdout", e))?;
    output::out(&String::from_utf8_lossy(&buf))
}
