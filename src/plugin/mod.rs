//! The `kubectl-devportal` plugin: the everyday workflow of consumers and owners as kubectl
//! subcommands (`kubectl devportal products`, `request`, `keys`, `reveal`, `requests`, `approve`,
//! `deny`, `rotate`), on kube-rs with the user's kubeconfig and context. One module per command
//! group; [`output`] formats what they print. docs/kubectl-plugin.md is the user's guide.
//!
//! No command prints, logs or puts into an error a key value, except `reveal` on stdout.

pub mod inbox;
pub mod keys;
pub mod output;
pub mod products;
pub mod reveal;
pub mod rotate;
pub mod session;
pub mod shell;

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
    Products(products::ProductsArgs),
    /// Request an API key for a product at a plan tier (creates an APIKey).
    Request(keys::RequestArgs),
    /// List your API keys: phase, product, plan, expiry, age.
    Keys(keys::KeysArgs),
    /// Print the value of an approved key (only into a pipe or a file, or with --show).
    Reveal(reveal::RevealArgs),
    /// The owner's inbox: the key requests for the products of a namespace.
    Requests(inbox::RequestsArgs),
    /// Approve a key request (creates an APIKeyApproval).
    Approve(inbox::ApproveArgs),
    /// Deny a key request, with a reason (creates an APIKeyApproval).
    Deny(inbox::DenyArgs),
    /// Give a key a new value; the old one stops working.
    Rotate(rotate::RotateArgs),
    /// Print a shell completion script.
    Completion(shell::CompletionArgs),
    /// Print the plugin's version.
    Version,
}

impl Cli {
    /// Runs the chosen subcommand.
    pub async fn run(self) -> Result<()> {
        let connection = self.connection;
        match self.command {
            Command::Completion(args) => shell::completion(&args),
            Command::Version => shell::version(),
            Command::Products(args) => products::run(&connection.connect().await?, &args).await,
            Command::Request(args) => keys::request(&connection.connect().await?, &args).await,
            Command::Keys(args) => keys::list(&connection.connect().await?, &args).await,
            Command::Reveal(args) => reveal::run(&connection, &args).await,
            Command::Requests(args) => inbox::list(&connection.connect().await?, &args).await,
            Command::Approve(args) => {
                let review = inbox::Review::approve(args);
                inbox::review(&connection.connect().await?, review).await
            }
            Command::Deny(args) => {
                let review = inbox::Review::deny(args);
                inbox::review(&connection.connect().await?, review).await
            }
            Command::Rotate(args) => rotate::run(&connection.connect().await?, &args).await,
        }
    }
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
