//! Command-line interface of the `devportal` binary.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::controller::{self, ControllerArgs};
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
    /// Run the controller: product discovery, key approval and API-key Secrets.
    Controller(ControllerArgs),
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
            Command::Controller(args) => {
                let client = kube::Client::try_default().await?;
                controller::run(args, client, shutdown_on_signal()).await
            }
        }
    }
}

/// A token cancelled on the first SIGTERM or SIGINT, shared by everything that must drain.
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::error!(%error, "cannot listen for SIGTERM");
                    return;
                }
            };
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        }
        trigger.cancel();
    });
    token
}
