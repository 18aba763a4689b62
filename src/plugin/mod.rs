//! The `kubectl-devportal` plugin: the everyday workflow of consumers and owners as kubectl
//! subcommands (`kubectl devportal products`, `request`, `keys`, `status`, `delete`, `reveal`,
//! `requests`, `approve`, `deny`, `rotate`), on kube-rs with the user's kubeconfig and kubectl's
//! connection flags ([`session`]). One module per command group; [`output`] and [`printers`]
//! format what they print, [`complete`] answers shell completion. docs/kubectl-plugin.md is the
//! user's guide.
//!
//! No command prints, logs or puts into an error a key value, except `reveal` on stdout.

pub mod complete;
pub mod inbox;
pub mod keys;
pub mod listing;
pub mod output;
pub mod policy_limits;
pub mod printers;
pub mod products;
pub mod request;
pub mod resolve;
pub mod reveal;
pub mod rotate;
pub mod session;
pub mod shell;
pub mod status;
pub mod table;
pub mod watch;

use clap::{Parser, Subcommand};

use crate::{Error, Result};
use session::Connection;

/// kubectl devportal: browse API products, request and reveal API keys, review requests.
#[derive(Debug, Parser)]
#[command(name = "kubectl-devportal", version)]
pub struct Cli {
    /// Which cluster, as whom, in which namespace.
    #[command(flatten)]
    pub connection: Connection,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List published APIProducts: plans and limits, auth scheme, approval mode.
    #[command(
        after_help = "Examples:\n  kubectl devportal products -n shop\n  kubectl devportal products -A -o wide"
    )]
    Products(products::ProductsArgs),
    /// Request an API key for a product at a plan tier (creates an APIKey).
    #[command(
        after_help = "Examples:\n  kubectl devportal request toys --plan gold -n team-a\n  kubectl devportal request toys --plan gold --product-namespace shop --expires-in 30d -n team-a"
    )]
    Request(request::RequestArgs),
    /// List your API keys: phase, product, plan, expiry, age.
    #[command(
        after_help = "Examples:\n  kubectl devportal keys -n team-a\n  kubectl devportal keys -A -o wide"
    )]
    Keys(keys::KeysArgs),
    /// One key in full: phase and why, reviewer, expiry, Secret, last rotation, gateway.
    Status(status::StatusArgs),
    /// Delete API keys (devportal removes their Secrets; waits until they are gone).
    Delete(status::DeleteArgs),
    /// Print the value of an approved key (only into a pipe or a file, or with --show).
    #[command(
        after_help = "Examples:\n  kubectl devportal reveal toys-8bjlg -n team-a | wl-copy\n  kubectl devportal reveal toys-8bjlg > key.txt"
    )]
    Reveal(reveal::RevealArgs),
    /// The owner's inbox: the key requests for the products of a namespace.
    #[command(
        after_help = "Examples:\n  kubectl devportal requests -n shop\n  kubectl devportal requests -n shop --all -o json"
    )]
    Requests(inbox::RequestsArgs),
    /// Approve a key request (creates an APIKeyApproval).
    #[command(
        after_help = "Examples:\n  kubectl devportal approve toys-8bjlg-8b142cb1 -n shop --reason welcome"
    )]
    Approve(inbox::ApproveArgs),
    /// Deny a key request, with a reason (creates an APIKeyApproval).
    #[command(
        after_help = "Examples:\n  kubectl devportal deny toys-8bjlg-8b142cb1 -n shop --reason \"use the silver plan\""
    )]
    Deny(inbox::DenyArgs),
    /// Give a key a new value; the old one stops working.
    #[command(after_help = "Examples:\n  kubectl devportal rotate toys-8bjlg -n team-a")]
    Rotate(rotate::RotateArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  source <(kubectl devportal completion bash)\n  kubectl devportal completion zsh > \"${fpath[1]}/_kubectl-devportal\""
    )]
    Completion(shell::CompletionArgs),
    /// Print the plugin's version, git commit, build date and the API server's version.
    #[command(after_help = "Examples:\n  kubectl devportal version")]
    Version,
}

impl Cli {
    /// Runs the chosen subcommand.
    pub async fn run(self) -> Result<()> {
        let connection = self.connection;
        match self.command {
            Command::Completion(args) => shell::completion(&args),
            Command::Version => shell::version(&connection).await,
            command => {
                if let Command::Reveal(args) = &command {
                    reveal::check_destination(&connection, args)?;
                }
                let session = connection.connect().await?;
                let slow = slow_note(&session.server);
                let result = command.run(&session).await;
                slow.abort();
                result.map_err(|error| unreachable(&session.server, error))
            }
        }
    }
}

impl Command {
    /// Runs a subcommand that talks to the cluster.
    async fn run(self, session: &session::Session) -> Result<()> {
        match self {
            Command::Products(args) => products::run(session, &args).await,
            Command::Request(args) => request::request(session, &args).await,
            Command::Keys(args) => keys::list(session, &args).await,
            Command::Status(args) => status::status(session, &args).await,
            Command::Delete(args) => status::delete(session, &args).await,
            Command::Requests(args) => inbox::list(session, &args).await,
            Command::Approve(args) => inbox::review(session, inbox::Review::approve(args)).await,
            Command::Deny(args) => inbox::review(session, inbox::Review::deny(args)).await,
            Command::Rotate(args) => rotate::run(session, &args).await,
            Command::Reveal(args) => reveal::run(session, &args).await,
            Command::Completion(_) | Command::Version => Ok(()),
        }
    }
}

/// After a few seconds without an answer, tells a person at a terminal whom the plugin is
/// waiting for (scripts, whose stderr is not a terminal, get only the eventual error).
fn slow_note(server: &str) -> tokio::task::JoinHandle<()> {
    let server = server.to_string();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            eprintln!("waiting for {server} (--request-timeout bounds each answer)...");
        }
    })
}

/// A failure to talk to the API server (not a refusal by it) as one line naming the server and
/// the cause, e.g. `cannot reach the API server at https://127.0.0.1:6443: ... Connection
/// refused`; every other error as it is.
pub fn unreachable(server: &str, error: Error) -> Error {
    match error {
        Error::Kube(kube::Error::Api(_)) => error,
        Error::Kube(other) => {
            let mut causes = vec![other.to_string()];
            let mut source = std::error::Error::source(&other);
            while let Some(cause) = source {
                let text = cause.to_string();
                if !causes.iter().any(|c| c.contains(&text)) {
                    causes.push(text);
                }
                source = cause.source();
            }
            Error::Invalid(format!(
                "cannot reach the API server at {server}: {}",
                causes.join(": ")
            ))
        }
        other => other,
    }
}

/// Whether the plugin runs as `kubectl devportal`: kubectl runs a plugin by its full path
/// (`argv[0]` holds a `/`) or says so in `KUBECTL_PLUGINS_CALLER`; run by hand it is
/// `kubectl-devportal`.
pub fn run_by_kubectl(argv0: &str, caller: Option<&str>) -> bool {
    caller.is_some_and(|c| !c.is_empty()) || argv0.contains('/')
}

/// The command line, parsed, with usage lines naming the command the way the user ran it;
/// exits 2 (usage) or 0 (`--help`) as clap does.
pub fn parse() -> Cli {
    let argv0 = std::env::args().next().unwrap_or_default();
    let caller = std::env::var("KUBECTL_PLUGINS_CALLER").ok();
    let mut command = <Cli as clap::CommandFactory>::command();
    if run_by_kubectl(&argv0, caller.as_deref()) {
        command = command.bin_name("kubectl devportal");
    }
    let matches = command.get_matches();
    <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// `kubectl-devportal __complete WORDS...` (the completion scripts' and kubectl's question):
/// `Some(text to print)` when `args` (without the program name) ask it, else `None`.
pub async fn completion_request(args: &[String]) -> Option<String> {
    let (first, words) = args.split_first()?;
    if first != "__complete" {
        return None;
    }
    let current = words.last().map(String::as_str).unwrap_or_default();
    Some(complete::render(
        current,
        &complete::candidates(words).await,
    ))
}

/// The one line the plugin prints for `error`: for a refusal by the API server or the admission
/// webhook, their own message, as kubectl shows it (control characters shown as `?`).
pub fn message(error: &Error) -> String {
    let text = match error {
        Error::Kube(kube::Error::Api(status)) if !status.message.is_empty() => {
            status.message.clone()
        }
        Error::Kube(kube::Error::Api(status)) => {
            format!("the API server answered {} {}", status.code, status.reason)
        }
        Error::Kube(other) => format!("talking to the API server: {other}"),
        other => other.to_string(),
    };
    output::inert(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn kubectl_runs_the_plugin_by_its_path() {
        assert!(run_by_kubectl("/usr/local/bin/kubectl-devportal", None));
        assert!(run_by_kubectl(
            "kubectl-devportal",
            Some("/usr/bin/kubectl")
        ));
        assert!(!run_by_kubectl("kubectl-devportal", None));
    }

    #[test]
    fn every_command_has_examples() {
        for sub in Cli::command().get_subcommands() {
            let help = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(
                help.starts_with("Examples:"),
                "{} has no examples",
                sub.get_name()
            );
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_refusal_is_shown_as_the_servers_own_message() {
        let status = kube::core::Status::failure(
            "admission webhook \"validate.devportal.kuadrant.io\" denied the request: no",
            "Forbidden",
        )
        .with_code(403);
        let error = Error::Kube(kube::Error::Api(Box::new(status)));
        assert_eq!(
            message(&error),
            "admission webhook \"validate.devportal.kuadrant.io\" denied the request: no"
        );
        assert_eq!(
            message(&Error::Invalid("plain".into())),
            "plain",
            "other errors are their own one line"
        );
        assert_eq!(message(&Error::Invalid("a\nb".into())), "a?b", "one line");
    }
}
