//! What both reconcile loops share: the write gate, metrics around each reconcile, the error
//! policy, and the log of what the loop itself reports.

use std::sync::Arc;
use std::time::Instant;

use futures::{Stream, future};
use kube::Resource;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::watch;

use super::context::Context;
use super::inbox::requests::RequestCache;
use super::secret_cache::SecretCache;
use super::signals::Signals;
use crate::admin::Telemetry;
use crate::{Error, Result};

/// Runs one reconcile of `object` by `controller` with its metrics, and forgets the object's
/// failure count when it succeeds. A replica that is not active (no Lease, or caches not yet
/// synced) does nothing: it is reconciled again as a whole when it becomes active.
pub(super) async fn measured<K, Fut>(
    controller: &'static str,
    object: Arc<K>,
    ctx: Arc<Context>,
    reconcile: impl FnOnce(Arc<K>, Arc<Context>) -> Fut,
) -> Result<Action>
where
    K: Resource<DynamicType = ()>,
    Fut: Future<Output = Result<Action>>,
{
    if !ctx.active() {
        return Ok(Action::await_change());
    }
    // The inbox's second lane waits while any reconcile runs.
    let _reconciling = ctx.inbox.lane.reconciling();
    let id = ObjectRef::from_obj(&*object).to_string();
    let started = Instant::now();
    let result = reconcile(object, ctx.clone()).await;
    ctx.metrics
        .controller
        .reconciled(controller, started.elapsed(), result.as_ref().err());
    if result.is_ok() {
        ctx.succeeded(&id);
    }
    result
}

/// The error policy of both controllers: log, and retry after the object's own backoff.
pub(super) fn retry_later<K: Resource<DynamicType = ()>>(
    object: Arc<K>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    let id = ObjectRef::from_obj(&*object);
    tracing::warn!(object = %id, %error, "reconcile failed");
    ctx.backoff(id.to_string(), error)
}

/// Logs what the reconcile loop itself reports: triggers for objects no longer in the cache.
/// Reconcile failures are logged by the error policy, watch failures by the watches.
pub(super) fn log_outcome<K, E1: std::error::Error, E2: std::error::Error>(
    outcome: std::result::Result<(ObjectRef<K>, Action), kube::runtime::controller::Error<E1, E2>>,
) -> future::Ready<()>
where
    K: Resource,
{
    use kube::runtime::controller::Error as Loop;
    match outcome {
        Err(Loop::QueueError(error)) => tracing::warn!(%error, "watch failed; retrying"),
        Err(Loop::ObjectNotFound(object)) => tracing::debug!(%object, "triggered object is gone"),
        _ => {}
    }
    future::ready(())
}

/// Emits once each time `active` turns true: the trigger that reconciles every object when this
/// replica starts to write.
pub(super) fn on_activation(active: watch::Receiver<bool>) -> impl Stream<Item = ()> + Send {
    futures::stream::unfold(active, |mut active| async move {
        loop {
            active.changed().await.ok()?;
            if *active.borrow_and_update() {
                return Some(((), active));
            }
        }
    })
}

/// The write gate: true while this replica holds the Lease and its caches (the watches, the
/// Secret cache and the request cache) have synced. Also reports readiness (caches synced, leader or not) and the
/// leader gauge.
pub(super) fn gate(
    signals: &Signals,
    (secrets, requests): (Arc<SecretCache>, Arc<RequestCache>),
    telemetry: Telemetry,
    health_component: &'static str,
) -> watch::Receiver<bool> {
    let (active_tx, active) = watch::channel(false);
    let synced = signals.synced.clone();
    let mut leader = signals.leader.clone();
    let shutdown = signals.shutdown.clone();
    tokio::spawn(async move {
        let caches = async {
            synced.wait().await && {
                secrets.wait_synced().await;
                requests.wait_synced().await;
                true
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            listed = caches => if !listed { return },
        }
        telemetry.health.set_ready(health_component, true);
        loop {
            let leading = *leader.borrow_and_update();
            telemetry.metrics.controller.set_leader(leading);
            if *active_tx.borrow() != leading {
                tracing::info!(
                    active = leading,
                    "{}",
                    if leading {
                        "leading: reconciling everything"
                    } else {
                        "not leading: reconcilers idle"
                    }
                );
                active_tx.send_replace(leading);
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                changed = leader.changed() => if changed.is_err() { break },
            }
        }
        active_tx.send_replace(false);
        telemetry.metrics.controller.set_leader(false);
    });
    active
}
