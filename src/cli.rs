//! Command-line interface of the `devportal` binary: one subcommand per role, each role's flags
//! flattened from its own module, environment variables as fallbacks.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::admin::{self, AdminArgs, Telemetry};
use crate::controller::{self, ControllerArgs};
use crate::key_limit::KeyLimitArgs;
use crate::watches::Watches;
use crate::webhook::{self, WebhookArgs};
use crate::{Result, crds};

/// devportal: API products and API keys for Kubernetes gateways.
#[derive(Debug, Parser)]
#[command(name = "devportal", version, about)]
pub struct Cli {
    /// Log filter, in `tracing` EnvFilter syntax.
    #[arg(long, env = "DEVPORTAL_LOG", default_value = "info", global = true)]
    pub log: String,

    /// Log line format: `text` (coloured on a terminal only) or `json` (one object a line).
    #[arg(
        long,
        env = "DEVPORTAL_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: crate::logging::LogFormat,

    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run both roles in one process: the admission webhook and the controller.
    Run(Box<RunCommand>),
    /// Run the controller only: product discovery, key approval and API-key Secrets.
    Controller(Box<ControllerCommand>),
    /// Serve the admission webhook only, over HTTPS until SIGTERM or SIGINT.
    Webhook(Box<WebhookCommand>),
    /// Print devportal's CustomResourceDefinitions, or write or check them in a directory.
    Crds(CrdsArgs),
    /// Check a key's format and checksum offline. Reads the key from stdin, never from the
    /// command line, so it stays out of shell history and process lists.
    VerifyKey(VerifyKeyArgs),
}

/// Arguments of `devportal verify-key`.
#[derive(Debug, Args)]
pub struct VerifyKeyArgs {
    /// Read the key from standard input (the only source, stated for clarity in scripts).
    #[arg(long, default_value_t = true)]
    pub stdin: bool,
}

/// Arguments of `devportal run`.
#[derive(Debug, Args)]
pub struct RunCommand {
    /// The admin port.
    #[command(flatten)]
    pub admin: AdminArgs,
    /// The webhook's settings.
    #[command(flatten)]
    pub webhook: WebhookArgs,
    /// The controller's settings.
    #[command(flatten)]
    pub controller: ControllerArgs,
    /// The key limit, one value for both roles.
    #[command(flatten)]
    pub key_limit: KeyLimitArgs,
}

/// Arguments of `devportal controller`.
#[derive(Debug, Args)]
pub struct ControllerCommand {
    /// The admin port.
    #[command(flatten)]
    pub admin: AdminArgs,
    /// The controller's settings.
    #[command(flatten)]
    pub controller: ControllerArgs,
    /// The key limit the controller backs up (the same flags as the webhook's).
    #[command(flatten)]
    pub key_limit: KeyLimitArgs,
}

/// Arguments of `devportal webhook`.
#[derive(Debug, Args)]
pub struct WebhookCommand {
    /// The admin port.
    #[command(flatten)]
    pub admin: AdminArgs,
    /// The webhook's settings.
    #[command(flatten)]
    pub webhook: WebhookArgs,
    /// The key limit.
    #[command(flatten)]
    pub key_limit: KeyLimitArgs,
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
            Command::VerifyKey(_) => {
                let mut key = String::new();
                std::io::stdin()
                    .read_line(&mut key)
                    .map_err(|source| crate::Error::Io {
                        path: "stdin".into(),
                        source,
                    })?;
                if crate::keys::verify(key.trim()) {
                    println!("valid");
                    Ok(())
                } else {
                    Err(crate::Error::Invalid(
                        "not a well-formed devportal key (format or checksum)".into(),
                    ))
                }
            }
            Command::Controller(args) => {
                let args = *args;
                with_admin(&args.admin, |client, telemetry, shutdown| async move {
                    let mut watches = Watches::new(client.clone());
                    let feeds = controller::Feeds::subscribe(&mut watches);
                    let synced = watches.start(&shutdown);
                    let roles = (args.controller, args.key_limit);
                    controller::run(roles, client, feeds, synced, telemetry, shutdown).await
                })
                .await
            }
            Command::Webhook(args) => {
                let args = *args;
                with_admin(&args.admin, |client, telemetry, shutdown| async move {
                    let mut watches = Watches::new(client.clone());
                    let feeds = webhook::Feeds::subscribe(&mut watches);
                    watches.start(&shutdown);
                    let roles = (args.webhook, args.key_limit);
                    webhook::run(roles, client, feeds, telemetry, shutdown).await
                })
                .await
            }
            Command::Run(args) => {
                let RunCommand {
                    admin,
                    webhook: webhook_args,
                    controller: controller_args,
                    key_limit,
                } = *args;
                with_admin(&admin, |client, telemetry, shutdown| async move {
                    // One set of watches for both roles: each kind is watched once.
                    let mut watches = Watches::new(client.clone());
                    let webhook_feeds = webhook::Feeds::subscribe(&mut watches);
                    let controller_feeds = controller::Feeds::subscribe(&mut watches);
                    let synced = watches.start(&shutdown);
                    // Either role failing stops the other: a half-running devportal is worse
                    // than a restarted one.
                    let (webhook, controller) = tokio::join!(
                        stop_all_after(
                            &shutdown,
                            webhook::run(
                                (webhook_args, key_limit),
                                client.clone(),
                                webhook_feeds,
                                telemetry.clone(),
                                shutdown.clone()
                            )
                        ),
                        stop_all_after(
                            &shutdown,
                            controller::run(
                                (controller_args, key_limit),
                                client,
                                controller_feeds,
                                synced,
                                telemetry,
                                shutdown.clone()
                            )
                        ),
                    );
                    webhook.and(controller)
                })
                .await
            }
        }
    }
}

/// Awaits one role, then signals shutdown: in `run`, either role ending stops the other.
async fn stop_all_after<T>(shutdown: &CancellationToken, role: impl Future<Output = T>) -> T {
    let result = role.await;
    shutdown.cancel();
    result
}

/// Runs `roles` with a client, the telemetry and the shutdown signal, serving the admin port
/// alongside until the roles have finished draining.
async fn with_admin<F, Fut>(args: &AdminArgs, roles: F) -> Result<()>
where
    F: FnOnce(kube::Client, Telemetry, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let client = kube::Client::try_default().await?;
    let telemetry = Telemetry::default();
    let listener = admin::bind(args).await?;
    let shutdown = shutdown_on_signal();
    let done = CancellationToken::new();
    let admin = tokio::spawn(admin::serve(
        listener,
        telemetry.clone(),
        shutdown.clone(),
        done.clone(),
    ));
    let result = roles(client, telemetry, shutdown).await;
    done.cancel();
    match admin.await {
        Ok(served) => result.and(served),
        Err(join) => result.and(Err(crate::Error::Config(format!(
            "admin server task: {join}"
        )))),
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
