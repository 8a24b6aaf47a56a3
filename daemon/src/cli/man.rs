//! `pm man`: pm's manual page (roff), from the CLI's own definition: `pm man | man -l -`; or, with
//! `--dir DIR`, pm.1 and a page per subcommand (pm-start.1, …) written into DIR, the pages pm.1
//! refers to (`pm man --dir /usr/local/share/man/man1`).

use anyhow::Context;
use clap::CommandFactory;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Write pm.1 and every subcommand's page into this directory instead of printing pm.1.
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let command = super::Cli::command();
    if let Some(dir) = args.dir {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        clap_mangen::generate_to(command, &dir)
            .with_context(|| format!("cannot write the pages into {}", dir.display()))?;
        say!("wrote pm.1 and its subcommands' pages into {}", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(command).render(&mut page)?;
    say!("{}", String::from_utf8_lossy(&page).trim_end());
    Ok(ExitCode::SUCCESS)
}
