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
    /// Authorino reads API keys for (the namespace of the `Kuadrant` CR it serves). Unset:
    /// kuadrant-system. It never moves by itself: a Kuadrant CR elsewhere is reported, not
    /// followed (a tenant may be able to create one). Unset while the oldest Kuadrant CR is
    /// elsewhere (where earlier releases wrote keys), devportal does not start and names the
    /// value to set.
    #[arg(long, env = "DEVPORTAL_ENFORCEMENT_NAMESPACE")]
    pub enforcement_namespace: Option<String>,

    /// How often Kuadrant CRs are listed to report one outside --enforcement-namespace (log,
    /// warning Event, `devportal_kuadrant_namespace_mismatch`) (Go duration).
    #[arg(long, env = "DEVPORTAL_KUADRANT_POLL_INTERVAL", default_value = "1m", value_parser = crate::flags::parse_duration)]
    pub kuadrant_poll_interval: Duration,

    /// Authorino's `--secret-label-selector` (it watches only Secrets that match): every
    /// enforcement Secret gets labels that satisfy it.
    #[arg(long, env = "DEVPORTAL_AUTHORINO_SECRET_LABEL_SELECTOR", default_value = AUTHORINO_DEFAULT_SECRET_SELECTOR)]
    pub authorino_secret_label_selector: String,

    /// Prefix of generated keys (`<prefix>_...`), so secret scanners can find leaked keys.
    #[arg(long, env = "DEVPORTAL_KEY_PREFIX", default_value = keys::DEFAULT_PREFIX)]
    pub key_prefix: String,

    /// Shortest key value a consumer may bring in `spec.secretRef` (their own Secret); shorter
    /// values, and values with characters outside printable ASCII without space, fail the key.
    #[arg(long, env = "DEVPORTAL_OWN_KEY_MIN_LENGTH", default_value_t = keys::DEFAULT_OWN_MIN_LENGTH)]
    pub own_key_min_length: usize,

    /// Discovery fetches: size cap, attempts, allowed and refused destinations.
    #[command(flatten)]
    pub fetch: FetchArgs,

    /// How often a fetched OpenAPI document is refreshed (Go duration, e.g. `1h`).
    #[arg(long, env = "DEVPORTAL_OPENAPI_REFRESH", default_value = "1h", value_parser = crate::flags::parse_duration)]
    pub openapi_refresh: Duration,

    /// How often every object is reconciled even without a change (the APIKeys one at a time,
    /// spread evenly over the period).
    #[arg(long, env = "DEVPORTAL_RESYNC", default_value = "30m", value_parser = crate::flags::parse_duration)]
    pub resync: Duration,

    /// Namespaces the admission webhook does not cover (comma-separated): the names the
    /// `namespaceSelector` of manifests/webhooks.yaml excludes. APIKeys there were never
    /// validated (any requester, any approval), so the controller leaves them alone: no Secrets,
    /// no status, one warning Event per key.
    #[arg(
        long,
        env = "DEVPORTAL_WEBHOOK_EXCLUDED_NAMESPACES",
        default_value = "kube-system",
        value_delimiter = ','
    )]
    pub webhook_excluded_namespaces: Vec<String>,

    /// Reconciles run at once per controller.
    #[arg(long, env = "DEVPORTAL_CONCURRENCY", default_value_t = 32)]
    pub concurrency: u16,

    /// Normal (non-warning) Events written per second, after a burst of `--event-burst`. In a
    /// burst of transitions (thousands of keys approved at once) the rest are not written, each
    /// costing the API server a write, but counted in
    /// `devportal_controller_events_suppressed_total`; status conditions still say it all.
    /// Warning Events are always written.
    #[arg(long, env = "DEVPORTAL_EVENTS_PER_SECOND", default_value_t = 10.0)]
    pub events_per_second: f64,

    /// Normal Events written at once before `--events-per-second` applies.
    #[arg(long, env = "DEVPORTAL_EVENT_BURST", default_value_t = 200)]
    pub event_burst: u32,

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
    /// See [`ControllerArgs::own_key_min_length`].
    pub own_key_min_length: usize,
    /// See [`ControllerArgs::openapi_refresh`].
    pub openapi_refresh: Duration,
    /// See [`ControllerArgs::resync`].
    pub resync: Duration,
    /// See [`ControllerArgs::webhook_excluded_namespaces`].
    pub uncovered_namespaces: Vec<String>,
    /// The key limit: keys past it in creation order are not approved.
    pub key_limit: KeyLimitArgs,
}

impl Settings {
    /// Whether the admission webhook covers `namespace`, i.e. validated the APIKeys in it.
    pub fn webhook_covers(&self, namespace: &str) -> bool {
        !self.uncovered_namespaces.iter().any(|n| n == namespace)
    }

    /// The settings from the controller's flags and the key limit.
    pub fn new(args: &ControllerArgs, key_limit: KeyLimitArgs) -> Result<Self> {
        let authorino_selector = selector::parse(&args.authorino_secret_label_selector)
            .map_err(|e| Error::Config(format!("--authorino-secret-label-selector: {e}")))?;
        Ok(Self {
            authorino_selector,
            key_prefix: args.key_prefix.clone(),
            own_key_min_length: args.own_key_min_length,
            openapi_refresh: args.openapi_refresh,
            resync: args.resync,
            uncovered_namespaces: args
                .webhook_excluded_namespaces
                .iter()
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .collect(),
            key_limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use serde::Deserialize;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        controller: ControllerArgs,
        #[command(flatten)]
        key_limit: KeyLimitArgs,
    }

    /// The namespaces a webhook configuration's namespaceSelector excludes by name.
    fn excluded_by(manifest: &str) -> Vec<Vec<String>> {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(manifest),
        )
        .unwrap();
        serde_yaml::Deserializer::from_str(&text)
            .map(|doc| serde_yaml::Value::deserialize(doc).unwrap())
            .flat_map(|doc| doc["webhooks"].as_sequence().cloned().unwrap_or_default())
            .map(|webhook| {
                let expressions = webhook["namespaceSelector"]["matchExpressions"]
                    .as_sequence()
                    .cloned()
                    .unwrap_or_default();
                let by_name = expressions
                    .iter()
                    .find(|e| e["key"].as_str() == Some("kubernetes.io/metadata.name"))
                    .expect("each webhook excludes namespaces by name");
                assert_eq!(by_name["operator"].as_str(), Some("NotIn"));
                serde_yaml::from_value(by_name["values"].clone()).unwrap()
            })
            .collect()
    }

    #[test]
    fn the_default_uncovered_namespaces_are_those_the_shipped_webhooks_exclude() {
        let defaults = Cli::try_parse_from(["devportal"]).unwrap();
        let settings = Settings::new(&defaults.controller, defaults.key_limit).unwrap();
        for manifest in [
            "manifests/webhooks.yaml",
            "webhooks/mutating.yaml",
            "webhooks/validating.yaml",
        ] {
            let excluded = excluded_by(manifest);
            assert!(!excluded.is_empty(), "{manifest}");
            for names in excluded {
                assert_eq!(names, settings.uncovered_namespaces, "{manifest}");
            }
        }
        let deployment = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/deployment.yaml"),
        )
        .unwrap();
        let env_value = deployment
            .lines()
            .skip_while(|l| !l.contains("name: DEVPORTAL_WEBHOOK_EXCLUDED_NAMESPACES"))
            .nth(1)
            .and_then(|l| l.trim().strip_prefix("value: "))
            .expect("the Deployment sets DEVPORTAL_WEBHOOK_EXCLUDED_NAMESPACES");
        assert_eq!(env_value, settings.uncovered_namespaces.join(","));
        assert!(!settings.webhook_covers("kube-system"));
        assert!(settings.webhook_covers("team-a"));

        let custom = Cli::try_parse_from([
            "devportal",
            "--webhook-excluded-namespaces",
            "kube-system, platform",
        ])
        .unwrap();
        let settings = Settings::new(&custom.controller, custom.key_limit).unwrap();
        assert!(!settings.webhook_covers("platform"));
    }
}
