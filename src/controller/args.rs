//! The controller's flags and the settings its reconcilers read.

use std::time::Duration;

use crate::discovery::FetchArgs;
use crate::key_limit::KeyLimitArgs;
use crate::keys;
use crate::names::AUTHORINO_DEFAULT_SECRET_SELECTOR;
use crate::selector::{self, Requirement};
use crate::{Error, Result};

use super::lease::LeaseConfig;

/// Command-line arguments of the controller.
#[derive(Clone, Debug, clap::Args)]
pub struct ControllerArgs {
    /// Namespace of every enforcement Secret: where kuadrant-operator puts the AuthConfigs that
    /// Authorino reads API keys for. Unset: the namespace of the `Kuadrant` CR (the oldest one,
    /// looked up at start and every --kuadrant-poll-interval), else kuadrant-system.
    #[arg(long, env = "DEVPORTAL_ENFORCEMENT_NAMESPACE")]
    pub enforcement_namespace: Option<String>,

    /// How often the `Kuadrant` CR's namespace is looked up again while --enforcement-namespace
    /// is unset (Go duration); a move moves every enforcement Secret.
    #[arg(long, env = "DEVPORTAL_KUADRANT_POLL_INTERVAL", default_value = "1m", value_parser = crate::flags::parse_duration)]
    pub kuadrant_poll_interval: Duration,

    /// Authorino's `--secret-label-selector` (it watches only Secrets that match): every
    /// enforcement Secret gets labels that satisfy it.
    #[arg(long, env = "DEVPORTAL_AUTHORINO_SECRET_LABEL_SELECTOR", default_value = AUTHORINO_DEFAULT_SECRET_SELECTOR)]
    pub authorino_secret_label_selector: String,

    /// Prefix of generated keys (`<prefix>_...`), so secret scanners can find leaked keys.
    #[arg(long, env = "DEVPORTAL_KEY_PREFIX", default_value = keys::DEFAULT_PREFIX)]
    pub key_prefix: String,

    /// Discovery fetches: size cap, attempts, allowed and refused destinations.
    #[command(flatten)]
    pub fetch: FetchArgs,

    /// How often a fetched OpenAPI document is refreshed (Go duration, e.g. `1h`).
    #[arg(long, env = "DEVPORTAL_OPENAPI_REFRESH", default_value = "1h", value_parser = crate::flags::parse_duration)]
    pub openapi_refresh: Duration,

    /// How often every object is reconciled even without a change.
    #[arg(long, env = "DEVPORTAL_RESYNC", default_value = "30m", value_parser = crate::flags::parse_duration)]
    pub resync: Duration,

    /// Reconciles run at once per controller.
    #[arg(long, env = "DEVPORTAL_CONCURRENCY", default_value_t = 32)]
    pub concurrency: u16,

    /// Leader election.
    #[command(flatten)]
    pub lease: LeaseArgs,
}

/// Command-line arguments of the leader election.
#[derive(Clone, Debug, clap::Args)]
pub struct LeaseArgs {
    /// Name of the coordination.k8s.io Lease.
    #[arg(
        long = "lease-name",
        env = "DEVPORTAL_LEASE_NAME",
        default_value = "devportal-controller"
    )]
    pub name: String,

    /// Namespace of the Lease (the pod's own namespace).
    #[arg(
        long = "lease-namespace",
        env = "POD_NAMESPACE",
        default_value = "devportal-system"
    )]
    pub namespace: String,

    /// This replica's identity (the pod name); a random one when unset.
    #[arg(long = "lease-identity", env = "POD_NAME")]
    pub identity: Option<String>,

    /// How long the lease is valid without renewal.
    #[arg(long = "lease-duration", env = "DEVPORTAL_LEASE_DURATION", default_value = "15s", value_parser = crate::flags::parse_duration)]
    pub duration: Duration,

    /// The leader steps down after failing to renew for this long.
    #[arg(long = "lease-renew-deadline", env = "DEVPORTAL_LEASE_RENEW_DEADLINE", default_value = "10s", value_parser = crate::flags::parse_duration)]
    pub renew_deadline: Duration,

    /// How often to try to acquire or renew the lease.
    #[arg(long = "lease-retry-period", env = "DEVPORTAL_LEASE_RETRY_PERIOD", default_value = "2s", value_parser = crate::flags::parse_duration)]
    pub retry_period: Duration,
}

impl LeaseArgs {
    /// The election settings, checked for consistency; a random identity when none is given.
    pub fn config(&self) -> Result<LeaseConfig> {
        if self.renew_deadline >= self.duration || self.retry_period >= self.renew_deadline {
            return Err(Error::Config(
                "need lease-retry-period < lease-renew-deadline < lease-duration".into(),
            ));
        }
        let identity = self.identity.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "devportal".into());
            let mut suffix = [0u8; 4];
            // A failing random source only makes the identity less unique.
            let _ = getrandom::fill(&mut suffix);
            format!("{host}-{}", u32::from_be_bytes(suffix))
        });
        Ok(LeaseConfig {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            identity,
            duration: self.duration,
            renew_deadline: self.renew_deadline,
            retry_period: self.retry_period,
        })
    }
}

/// Settings the reconcilers read.
#[derive(Clone, Debug)]
pub struct Settings {
    /// [`ControllerArgs::authorino_secret_label_selector`], parsed.
    pub authorino_selector: Vec<Requirement>,
    /// See [`ControllerArgs::key_prefix`].
    pub key_prefix: String,
    /// See [`ControllerArgs::openapi_refresh`].
    pub openapi_refresh: Duration,
    /// See [`ControllerArgs::resync`].
    pub resync: Duration,
    /// The key limit: keys past it in creation order are not approved.
    pub key_limit: KeyLimitArgs,
}

impl Settings {
    /// The settings from the controller's flags and the key limit.
    pub fn new(args: &ControllerArgs, key_limit: KeyLimitArgs) -> Result<Self> {
        let authorino_selector = selector::parse(&args.authorino_secret_label_selector)
            .map_err(|e| Error::Config(format!("--authorino-secret-label-selector: {e}")))?;
        Ok(Self {
            authorino_selector,
            key_prefix: args.key_prefix.clone(),
            openapi_refresh: args.openapi_refresh,
            resync: args.resync,
            key_limit,
        })
    }
}
