//! Shell completion scripts and manual pages, made from the clap definitions of
//! [`Cli`](super::Cli), so they list exactly the commands and flags the binary parses.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory as _;

use super::Cli;

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) {
    clap_complete::generate(shell, &mut Cli::command(), "pushmon", out);
}

/// The manual page `pushmon.1`, whose SUBCOMMANDS section lists every command.
pub fn man_page(out: &mut dyn Write) -> std::io::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(out)
}

/// `pushmon.1` and one page per command and subcommand (`pushmon-monitor-list.1` …)
/// in `dir`, which must exist.
pub fn man_pages(dir: &Path) -> std::io::Result<()> {
    clap_mangen::generate_to(Cli::command(), dir)
}
