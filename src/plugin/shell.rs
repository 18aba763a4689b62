//! `kubectl devportal completion SHELL` and `version`.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;
use super::output;
use super::session::Connection;
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

/// The plugin's own version lines: version, git commit and build date (the last two from
/// `DEVPORTAL_GIT_COMMIT` and `DEVPORTAL_BUILD_DATE` at build time, which `make install` and
/// hack/release-krew.sh set; `unknown` otherwise).
pub fn client_version() -> String {
    format!(
        "Client Version: {}\nGit Commit: {}\nBuild Date: {}\n",
        env!("CARGO_PKG_VERSION"),
        option_env!("DEVPORTAL_GIT_COMMIT").unwrap_or("unknown"),
        option_env!("DEVPORTAL_BUILD_DATE").unwrap_or("unknown"),
    )
}

/// Prints the plugin's version, then the API server's (or why it is unknown).
pub async fn version(connection: &Connection) -> Result<()> {
    output::emit(&client_version())?;
    let server = match connection.connect().await {
        Ok(session) => match session.client.apiserver_version().await {
            Ok(info) => info.git_version,
            Err(e) => {
                let reason = super::message(&super::unreachable(&session.server, e.into()));
                format!("unknown ({reason})")
            }
        },
        Err(e) => format!("unknown ({})", super::message(&e)),
    };
    output::emit(&format!("Server Version: {server}\n"))
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
