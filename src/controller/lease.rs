//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go does it: the leader renews
//! every retry period and steps down when it has not renewed within the renew deadline; a
//! candidate takes over only after it has seen the record unchanged for a whole lease duration,
//! measured on its own clock. With renew deadline < lease duration, two replicas never lead at once.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{Error, Result};

/// How long releasing the Lease at shutdown may take.
const RELEASE_LIMIT: Duration = Duration::from_secs(3);

/// Where the Lease lives and how it is held.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Lease name.
    pub name: String,
    /// Lease namespace.
    pub namespace: String,
    /// This replica's identity, unique among replicas.
    pub identity: String,
    /// How long a lease is valid without renewal.
    pub duration: Duration,
    /// The leader steps down when it could not renew for this long; shorter than `duration`.
    pub renew_deadline: Duration,
    /// How often to try to acquire or renew.
    pub retry_period: Duration,
}

/// Runs the election until `stop` is cancelled, publishing leadership on `leader`. Every API
/// call is bounded in time, so a leader that cannot reach the API server steps down within the
/// renew deadline and a stop is never held up by a hanging call. On stop a held Lease is
/// released so a standby takes over at once.
pub async fn run(
    client: Client,
    config: LeaseConfig,
    leader: watch::Sender<bool>,
    stop: CancellationToken,
) {
    let api = Api::<Lease>::namespaced(client, &config.namespace);
    let mut observed: Option<(String, Instant)> = None;
    let mut last_renew: Option<Instant> = None;
    loop {
        let attempt_started = Instant::now();
        let attempt = tokio::select! {
            () = stop.cancelled() => break,
            attempt = tokio::time::timeout(
                config.renew_deadline / 2,
                try_acquire_or_renew(&api, &config, &mut observed),
            ) => attempt.unwrap_or(Err(Error::Timeout("lease update"))),
        };
        match attempt {
            Ok(true) => {
                last_renew = Some(attempt_started);
                if !*leader.borrow() {
                    tracing::info!(lease = %config.name, identity = %config.identity, "became leader");
                    leader.send_replace(true);
                }
            }
            Ok(false) => {
                if *leader.borrow() {
                    tracing::warn!(lease = %config.name, "another replica holds the lease; stepping down");
                    leader.send_replace(false);
                }
            }
            Err(error) => {
                tracing::warn!(lease = %config.name, %error, "lease update failed");
                let expired = last_renew.is_none_or(|t| t.elapsed() >= config.renew_deadline);
                if *leader.borrow() && expired {
                    tracing::warn!(lease = %config.name, "could not renew within the deadline; stepping down");
                    leader.send_replace(false);
                }
            }
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(config.retry_period) => {}
        }
    }
    if *leader.borrow() {
        leader.send_replace(false);
        let released = tokio::time::timeout(RELEASE_LIMIT, release(&api, &config)).await;
        match released.unwrap_or(Err(Error::Timeout("lease release"))) {
            Ok(()) => tracing::info!(lease = %config.name, "released the lease"),
            Err(error) => {
                tracing::warn!(lease = %config.name, %error, "could not release the lease")
            }
        }
    }
}

async fn try_acquire_or_renew(
    api: &Api<Lease>,
    config: &LeaseConfig,
    observed: &mut Option<(String, Instant)>,
) -> Result<bool> {
    let now = MicroTime(Timestamp::now());
    let seconds = i32::try_from(config.duration.as_secs().max(1)).unwrap_or(i32::MAX);
    let Some(current) = api.get_opt(&config.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(config.identity.clone()),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e.into()),
        };
    };
    let version = current
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    if observed.as_ref().is_none_or(|(v, _)| *v != version) {
        *observed = Some((version, Instant::now()));
    }
    let spec = current.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    let ours = holder.as_deref() == Some(config.identity.as_str());
    if !ours && holder.is_some() {
        let valid_for = spec
            .lease_duration_seconds
            .map(|s| Duration::from_secs(s.max(0) as u64))
            .unwrap_or(config.duration);
        let seen_at = observed
            .as_ref()
            .map(|(_, t)| *t)
            .unwrap_or_else(Instant::now);
        if seen_at.elapsed() < valid_for {
            return Ok(false);
        }
    }
    let mut next = current;
    let next_spec = next.spec.get_or_insert_with(LeaseSpec::default);
    if !ours {
        next_spec.acquire_time = Some(now.clone());
        next_spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    next_spec.holder_identity = Some(config.identity.clone());
    next_spec.lease_duration_seconds = Some(seconds);
    next_spec.renew_time = Some(now);
    match api
        .replace(&config.name, &PostParams::default(), &next)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn release(api: &Api<Lease>, config: &LeaseConfig) -> Result<()> {
    let Some(mut lease) = api.get_opt(&config.name).await? else {
        return Ok(());
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    api.replace(&config.name, &PostParams::default(), &lease)
        .await?;
    Ok(())
}
