//! Which cluster, as whom and in which namespace: kubectl's own flags (`--kubeconfig`,
//! `--context`, `-n`), read from the user's kubeconfig like kubectl reads it.

use std::path::PathBuf;

use clap::Args;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::{Error, Result};

/// The connection flags every subcommand takes.
#[derive(Debug, Args)]
#[command(next_help_heading = "Connection")]
pub struct Connection {
    /// Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else in-cluster).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use (default: its current context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,

    /// The namespace (default: the context's namespace, else `default`).
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

/// A client of the chosen cluster and the namespace commands work in.
pub struct Session {
    /// The client, authenticated as the kubeconfig's user.
    pub client: Client,
    /// `-n`, else the context's namespace, else `default`.
    pub namespace: String,
}

impl Connection {
    /// Reads the kubeconfig and builds the client for the chosen context.
    pub async fn connect(&self) -> Result<Session> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..KubeConfigOptions::default()
        };
        let config = match (&self.kubeconfig, &self.context) {
            (Some(path), _) => {
                let file = Kubeconfig::read_from(path).map_err(|e| {
                    Error::Config(format!("reading kubeconfig {}: {e}", path.display()))
                })?;
                Config::from_custom_kubeconfig(file, &options)
                    .await
                    .map_err(|e| Error::Config(format!("kubeconfig: {e}")))?
            }
            (None, Some(_)) => Config::from_kubeconfig(&options)
                .await
                .map_err(|e| Error::Config(format!("kubeconfig: {e}")))?,
            // $KUBECONFIG, ~/.kube/config, else the pod's ServiceAccount, as kubectl does.
            (None, None) => Config::infer()
                .await
                .map_err(|e| Error::Config(format!("no usable kubeconfig: {e}")))?,
        };
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        Ok(Session {
            client: Client::try_from(config)?,
            namespace,
        })
    }
}
