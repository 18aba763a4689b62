//! Command-line interface of the `devportal` binary.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use tokio_util::sync::CancellationToken;

use crate::webhook::WebhookArgs;
use crate::{Result, crds};

/// devportal: API products and API keys for Kubernetes gateways.
#[derive(Debug, Parser)]
#[command(name = "devportal", version, about)]
pub struct Cli {
    /// Log filter, in `tracing` EnvFilter syntax.
    #[arg(long, env = "DEVPORTAL_LOG", default_value = "info", global = true)]
    pub log: String,

    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print devportal's CustomResourceDefinitions, or write or check them in a directory.
    Crds(CrdsArgs),
    /// Serve the admission webhook over HTTPS until SIGTERM or SIGINT.
    Webhook(WebhookCommand),
}

/// Arguments of `devportal webhook`.
#[derive(Debug, Args)]
pub struct WebhookCommand {
    /// The webhook's settings.
    #[command(flatten)]
    pub webhook: WebhookArgs,
}

/// Arguments of `devportal crds`.
#[derive(Debug, Args)]
pub struct CrdsArgs {
    /// Write one file per CRD into this directory instead of printing to stdout.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,

    /// Compare the files in --out-dir with the generated ones and fail if they differ.
    #[arg(long, requires = "out_dir")]
    pub check: bool,
}

impl Cli {
    /// Runs the chosen subcommand.
    pub async fn run(self) -> Result<()> {
        match self.command {
            Command::Crds(args) => match (args.out_dir, args.check) {
                (Some(dir), true) => crds::check_dir(&dir),
                (Some(dir), false) => crds::write_dir(&dir),
                (None, _) => {
                    print!("{}", crds::render_all()?);
                    Ok(())
                }
            },
            Command::Webhook(args) => {
                let client = kube::Client::try_default().await?;
                let shutdown = cancel_on_signal();
                crate::webhook::run(args.webhook, client, shutdown).await
            }
        }
    }
}

/// A token cancelled on the first SIGTERM or SIGINT.
fn cancel_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let terminated = async {
            match term.as_mut() {
                Some(term) => {
                    term.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminated => {}
        }
        tracing::info!("shutdown signal received");
        cancel.cancel();
    });
    token
}
