//! The controller: APIProduct discovery and the APIKey state machine with its Secrets.
//!
//! Every replica watches everything and keeps its caches and indexes warm; the Lease decides only
//! who writes. A replica reconciles while it is *active* — it holds the Lease and its caches have
//! synced — and every object is reconciled again the moment it becomes active, so a failover
//! starts from full caches instead of a cold list.
//!
//! Rooms: [`args`] (flags), [`context`] (what reconciles share, every write helper), [`wiring`]
//! (watches → reconcilers), [`reconcile_loop`] (the gate, metrics and error policy around each
//! reconcile), [`lease`] (leader election), [`product`] and [`apikey`] (the two
//! reconciles), [`inbox`] (the owner's inbox: APIKeyRequests and APIKeyApprovals), [`index`] and [`secret_cache`] (in-memory indexes and the Secret cache),
//! [`phase_counts`] (the gauges about all keys),
//! [`orphans`] (garbage collection of enforcement Secrets whose APIKey is gone), [`mac_key`] (the
//! key of the MAC that vouches for generated key values),
//! [`events`] (Kubernetes Events), [`enforcement_namespace`] (where enforcement Secrets go),
//! [`kuadrant_report`] (the report of a `Kuadrant` CR elsewhere), [`overlap`] (products whose keys would work on each
//! other's API).

mod apikey;
mod args;
mod context;
mod enforcement_namespace;
mod event_budget;
mod events;
mod finalizer_result;
mod inbox;
mod index;
mod kuadrant_report;
pub mod lease;
mod mac_key;
mod mappers;
mod orphans;
mod overlap;
mod pending_age;
mod phase_counts;
mod policy;
mod product;
mod reconcile_loop;
mod resync;
mod retry;
mod secret_cache;
mod signals;
mod wiring;

use std::time::Duration;

use kube::Client;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use apikey::{Evaluation, evaluate};
pub use args::{ControllerArgs, LeaseArgs, Settings};
pub use wiring::Feeds;

use crate::admin::Telemetry;
use crate::key_limit::KeyLimitArgs;
use crate::keys;
use crate::watches::Synced;
use crate::{Error, Result};

/// The controller's name in readiness reports.
const HEALTH_COMPONENT: &str = "controller";

/// How long in-flight reconciles may take to finish after SIGTERM before the controller stops
/// waiting for them and releases the Lease; well inside Kubernetes' default 30 s grace period.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// Runs the controller with `args` and the key limit it backs up until `shutdown` is cancelled: the leader election, and the reconcilers
/// over `feeds`, which write only while this replica is active. On shutdown in-flight reconciles
/// get [`DRAIN_LIMIT`] to finish, then a held Lease is released.
pub async fn run(
    (args, key_limit): (ControllerArgs, KeyLimitArgs),
    client: Client,
    feeds: Feeds,
    synced: Synced,
    telemetry: Telemetry,
    shutdown: CancellationToken,
) -> Result<()> {
    if !keys::valid_prefix(&args.key_prefix) {
        return Err(Error::Config(format!(
            "--key-prefix {:?} must be 1-16 lowercase letters or digits",
            args.key_prefix
        )));
    }
    let lease = args.lease.config()?;
    let identity = lease.identity.clone();
    let (leader_tx, leader) = watch::channel(false);
    let release = CancellationToken::new();
    telemetry.health.register(HEALTH_COMPONENT);
    let election = tokio::spawn(lease::run(
        client.clone(),
        lease,
        leader_tx,
        release.clone(),
    ));

    let reconcilers = wiring::run(
        (&args, key_limit),
        client,
        feeds,
        signals::Signals {
            synced,
            leader,
            shutdown: shutdown.clone(),
        },
        identity,
        telemetry,
        HEALTH_COMPONENT,
    );
    tokio::pin!(reconcilers);
    let outcome = tokio::select! {
        outcome = &mut reconcilers => outcome,
        () = shutdown.cancelled() => {
            match tokio::time::timeout(DRAIN_LIMIT, &mut reconcilers).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    tracing::warn!(limit = ?DRAIN_LIMIT, "reconciles still running at shutdown; not waiting longer");
                    Ok(())
                }
            }
        }
    };
    release.cancel();
    election
        .await
        .map_err(|e| Error::Config(format!("leader election task: {e}")))?;
    outcome
}
