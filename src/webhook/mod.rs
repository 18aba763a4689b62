//! The admission webhook (`devportal webhook`): a mutating and a validating webhook for APIKeys and
//! a validating webhook for APIProducts, served over HTTPS.
//!
//! - [`rules`]: the invariants, as pure functions over a [`lookup::Lookup`];
//! - [`review`]: AdmissionReview v1 decoding, dispatch and encoding;
//! - [`lookup`]: what the rules read of the cluster (shared watch stores, live fallbacks);
//! - [`key_counts`]: the keys that count toward the limit per requester and product;
//! - [`http`]: the axum routes, with the body cap and budget;
//! - [`connections`]: hyper over rustls: timeouts, the connection cap, graceful drain.

pub mod body_budget;
pub mod connections;
pub mod http;
pub mod key_counts;
pub mod lookup;
pub mod review;
pub mod rules;
#[cfg(test)]
mod tests;

pub use lookup::Feeds;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::admin::Telemetry;
use crate::certs::{self, CertArgs};
use crate::key_limit::KeyLimitArgs;
use crate::tls::{CertFiles, ReloadingCert, ReloadingClientCa};
use crate::{Error, Result};

/// Arguments of the webhook, flattened into every subcommand that runs it.
#[derive(Clone, Debug, Args)]
pub struct WebhookArgs {
    /// Address the HTTPS server listens on: the pod's IP (`POD_IP`) on port 8443 by default,
    /// else 127.0.0.1:8443.
    #[arg(
        long = "listen",
        env = "DEVPORTAL_WEBHOOK_LISTEN",
        default_value_t = crate::flags::default_listen(8443)
    )]
    pub listen: SocketAddr,

    /// PEM certificate chain the webhook serves (reloaded when the file changes).
    #[arg(
        long,
        env = "DEVPORTAL_TLS_CERT_FILE",
        default_value = "/etc/devportal/tls/tls.crt"
    )]
    pub tls_cert_file: PathBuf,

    /// PEM private key of the certificate (reloaded when the file changes).
    #[arg(
        long,
        env = "DEVPORTAL_TLS_KEY_FILE",
        default_value = "/etc/devportal/tls/tls.key"
    )]
    pub tls_key_file: PathBuf,

    /// How often to check the certificate files for changes (`5s`, `1m`).
    #[arg(long, env = "DEVPORTAL_TLS_RELOAD_INTERVAL", default_value = "5s", value_parser = crate::flags::parse_duration)]
    pub tls_reload_interval: Duration,

    /// The user name of devportal's controller, the only identity that removes devportal's
    /// finalizer from APIKeys. Defaults to the webhook's own identity (a SelfSubjectReview at
    /// start): the shipped manifests run both roles as one ServiceAccount.
    #[arg(long, env = "DEVPORTAL_CONTROLLER_USERNAME")]
    pub controller_username: Option<String>,

    /// Largest AdmissionReview body accepted, in bytes. Objects are at most about 1.5 MiB in etcd
    /// and an UPDATE carries two of them.
    #[arg(long, env = "DEVPORTAL_WEBHOOK_MAX_BODY_BYTES", default_value_t = 4 << 20)]
    pub max_body_bytes: usize,

    /// PEM bundle of the CA(s) whose client certificates may call the webhook: when set, a TLS
    /// client without a certificate chaining to it is refused (configure the API server to
    /// present one, docs/operator-guide.md). Reloaded when the file changes.
    #[arg(long, env = "DEVPORTAL_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,

    /// Open HTTPS connections at most; at the cap the longest-idle one is closed for a newcomer.
    #[arg(
        long = "max-connections",
        env = "DEVPORTAL_WEBHOOK_MAX_CONNECTIONS",
        default_value_t = 1024
    )]
    pub max_connections: usize,

    /// A connection with no request in flight for this long is closed (`60s`).
    #[arg(long = "idle-timeout", env = "DEVPORTAL_WEBHOOK_IDLE_TIMEOUT", default_value = "60s", value_parser = crate::flags::parse_duration)]
    pub idle_timeout: Duration,

    /// Live API calls (lookups on a cache miss, SubjectAccessReviews) per second, on average, of
    /// the whole webhook: the ceiling that protects the API server. Key requests and other
    /// writes may use at most half of it; reviews (APIKeyApprovals, approvals and revocations on
    /// APIKeys) may use all of it, so requesters never starve them. Over it an admission that
    /// needs a live call is denied with a request to retry.
    #[arg(
        long,
        env = "DEVPORTAL_LIVE_LOOKUPS_PER_SECOND",
        default_value_t = 100.0
    )]
    pub live_lookups_per_second: f64,

    /// Live API calls allowed in a burst above that rate (requests: half of it).
    #[arg(long, env = "DEVPORTAL_LIVE_LOOKUP_BURST", default_value_t = 400)]
    pub live_lookup_burst: u32,

    /// Live API calls per second, on average, that one caller (one username: a user, or a front
    /// end's ServiceAccount for all the users it acts for) may cause; dry runs count like
    /// writes. devportal's own identity has no such limit.
    #[arg(
        long,
        env = "DEVPORTAL_LIVE_LOOKUPS_PER_CALLER_PER_SECOND",
        default_value_t = 20.0
    )]
    pub live_lookups_per_caller_per_second: f64,

    /// Live API calls one caller may cause in a burst above that rate.
    #[arg(
        long,
        env = "DEVPORTAL_LIVE_LOOKUP_CALLER_BURST",
        default_value_t = 100
    )]
    pub live_lookup_caller_burst: u32,

    /// Self-managed certificates.
    #[command(flatten)]
    pub certs: CertArgs,
}

/// Callers whose live-call budgets are kept at most (see [`lookup::rate`]).
const MAX_CALLERS: usize = 4096;

impl WebhookArgs {
    /// The live-call budgets from the flags.
    pub fn budget_limits(&self) -> lookup::BudgetLimits {
        lookup::BudgetLimits {
            ceiling: lookup::Rate::new(self.live_lookups_per_second, self.live_lookup_burst),
            per_caller: lookup::Rate::new(
                self.live_lookups_per_caller_per_second,
                self.live_lookup_caller_burst,
            ),
            max_callers: MAX_CALLERS,
        }
    }

    /// The limits the rules enforce, with the key limit the controller shares.
    pub fn limits(&self, key_limit: &KeyLimitArgs) -> rules::Limits {
        rules::Limits {
            max_keys_per_user_per_product: key_limit.max_keys_per_user_per_product,
            expired_key_grace: key_limit.expired_key_grace,
            max_key_lifetime: key_limit.max_key_lifetime,
            controller_username: self.controller_username.clone().unwrap_or_default(),
        }
    }
}

/// The webhook's name in readiness reports.
const HEALTH_COMPONENT: &str = "webhook";

/// Runs the webhook with `args` and the key limit until `shutdown` is cancelled: loads the certificate, syncs the watch caches,
/// then binds the HTTPS listener (so a bound port means ready) and serves, draining in-flight
/// admissions on the way out.
pub async fn run(
    (args, key_limit): (WebhookArgs, KeyLimitArgs),
    client: kube::Client,
    feeds: Feeds,
    telemetry: Telemetry,
    shutdown: CancellationToken,
) -> Result<()> {
    telemetry.health.register(HEALTH_COMPONENT);
    let files = CertFiles {
        cert: args.tls_cert_file.clone(),
        key: args.tls_key_file.clone(),
    };
    if args.certs.self_managed_certs {
        certs::reconcile(&client, &args.certs, &files).await?;
        tokio::spawn(certs::run(
            client.clone(),
            args.certs.clone(),
            files.clone(),
            shutdown.clone(),
        ));
    }
    let cert = Arc::new(ReloadingCert::load(files)?);
    let client_ca = match &args.client_ca {
        Some(file) => Some(Arc::new(ReloadingClientCa::load(file.clone())?)),
        None => {
            tracing::warn!("no --client-ca: any client that reaches the webhook port may call it");
            None
        }
    };
    let tls = Arc::new(cert.server_config(client_ca.clone())?);

    let mut limits = args.limits(&key_limit);
    if limits.controller_username.is_empty() {
        limits.controller_username = crate::kube_ext::own_username(&client)
            .await
            .map_err(|e| Error::Config(format!(
                "cannot learn devportal's own user name (SelfSubjectReview): {e}; set --controller-username"
            )))?;
    }
    tracing::info!(controller = %limits.controller_username, "only this identity removes devportal's finalizer");
    let live_calls = lookup::LiveBudget::new(args.budget_limits());
    let lookup = lookup::CachedLookup::new(client, feeds, live_calls, &shutdown);
    tracing::info!("waiting for the apiproducts, httproutes and apikeys caches to sync");
    tokio::select! {
        synced = lookup.wait_until_ready() => synced?,
        _ = shutdown.cancelled() => return Ok(()),
    }

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| Error::Listen {
            addr: args.listen,
            source,
        })?;
    tracing::info!(listen = %args.listen, "caches synced; serving admission reviews");
    telemetry.health.set_ready(HEALTH_COMPONENT, true);
    tokio::spawn(crate::tls::watch(
        cert,
        args.tls_reload_interval,
        shutdown.clone(),
    ));
    if let Some(ca) = client_ca {
        tokio::spawn(crate::tls::watch(
            ca,
            args.tls_reload_interval,
            shutdown.clone(),
        ));
    }
    let webhook = Arc::new(review::Webhook::new(lookup, limits));
    let app = http::router(
        webhook,
        args.max_body_bytes,
        telemetry.metrics,
        shutdown.clone(),
    );
    let transport = connections::Transport {
        max_connections: args.max_connections,
        idle_timeout: args.idle_timeout,
    };
    connections::serve(listener, tls, app, transport, shutdown).await;
    Ok(())
}
