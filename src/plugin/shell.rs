//! `kubectl devportal completion SHELL` and `version`.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;
use super::output;
use crate::Result;

/// The name the completion scripts complete: the plugin's executable, as kubectl finds it.
pub const BIN_NAME: &str = "kubectl-devportal";

/// Arguments of `completion`.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The completion script for `shell`.
pub fn script(shell: Shell) -> String {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN_NAME, &mut script);
    String::from_utf8_lossy(&script).into_owned()
}

/// Prints the completion script.
pub fn completion(args: &CompletionArgs) -> Result<()> {
    output::emit(&script(args.shell))
}

/// Prints the plugin's version.
pub fn version() -> Result<()> {
    output::emit(&format!("{BIN_NAME} {}\n", env!("CARGO_PKG_VERSION")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_complete_the_subcommands() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = script(shell);
            assert!(script.contains(BIN_NAME), "{shell:?}");
            for subcommand in ["products", "request", "reveal", "approve", "deny", "rotate"] {
                assert!(script.contains(subcommand), "{shell:?} lacks {subcommand}");
            }
        }
    }
}
