//! `kubectl devportal completion SHELL` and `version`. The completion scripts complete
//! `kubectl-devportal` (and `kubectl devportal`, through the `kubectl_complete-devportal` helper
//! next to it) by asking the plugin itself: `kubectl-devportal __complete WORDS...` (see
//! [`super::complete`]).

use clap::{Args, ValueEnum};

use super::output;
use super::session::Connection;
use crate::Result;

/// The name the completion scripts complete: the plugin's executable, as kubectl finds it.
pub const BIN_NAME: &str = "kubectl-devportal";

/// A shell with a completion script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// bash (`source <(kubectl devportal completion bash)`).
    Bash,
    /// zsh.
    Zsh,
    /// fish.
    Fish,
}

/// Arguments of `completion`.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

const BASH: &str = r#"# bash completion for kubectl-devportal (names come from the cluster)
_kubectl_devportal() {
    local cur="${COMP_WORDS[COMP_CWORD]}" IFS=$'\n' line
    COMPREPLY=()
    while read -r line; do
        case "$line" in :*) ;; *) COMPREPLY+=("${line%%$'\t'*}") ;; esac
    done < <(kubectl-devportal __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)
}
complete -F _kubectl_devportal kubectl-devportal
"#;

const ZSH: &str = r#"#compdef kubectl-devportal
# zsh completion for kubectl-devportal (names come from the cluster)
_kubectl_devportal() {
    local -a candidates
    candidates=("${(@f)$(kubectl-devportal __complete "${(@)words[2,$CURRENT]}" 2>/dev/null | grep -v '^:' | cut -f1)}")
    compadd -- "${candidates[@]}"
}
compdef _kubectl_devportal kubectl-devportal
"#;

const FISH: &str = r#"# fish completion for kubectl-devportal (names come from the cluster)
complete -c kubectl-devportal -f -a '(kubectl-devportal __complete (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null | string match -v ":*")'
"#;

/// The completion script for `shell`.
pub fn script(shell: Shell) -> &'static str {
    match shell {
        Shell::Bash => BASH,
        Shell::Zsh => ZSH,
        Shell::Fish => FISH,
    }
}

/// Prints the completion script.
pub fn completion(args: &CompletionArgs) -> Result<()> {
    output::emit(script(args.shell))
}

/// The plugin's own version lines: version, git commit (the revision build.rs records, as in
/// `devportal_build_info`) and build date (`DEVPORTAL_BUILD_DATE` at build time, which `make
/// install` and hack/release-krew.sh set; `unknown` otherwise, so other builds stay reproducible).
pub fn client_version() -> String {
    format!(
        "Client Version: {}\nGit Commit: {}\nBuild Date: {}\n",
        env!("CARGO_PKG_VERSION"),
        env!("DEVPORTAL_REVISION"),
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
    fn scripts_ask_the_plugin_for_candidates() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = script(shell);
            assert!(script.contains("kubectl-devportal __complete"), "{shell:?}");
        }
    }
}
