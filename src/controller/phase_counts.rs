//! The gauges the controller publishes about the keys as a whole: how many are in each phase, how
//! long the oldest waiting key has waited, how many requests wait for the inbox's second lane.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::Store;
use tokio_util::sync::CancellationToken;

use super::context::Context;
use super::pending_age;
use crate::resources::cached_key::CachedKey;
use crate::resources::{APIKeyPhase, ApprovalMode};

/// Publishes how many keys are in each phase, and how long the oldest waiting key has waited,
/// and how many owners' copies of
/// requests wait for the inbox's second lane, while active: shortly after a reconcile changed a phase (once the watch cache has the new
/// status), and every few seconds regardless. Replicas that do not lead report nothing (zeros),
/// so a sum over replicas counts every key once and a max finds the oldest waiting key.
pub(super) async fn run(keys: Store<CachedKey>, ctx: Arc<Context>, shutdown: CancellationToken) {
    /// Time for the status just written to reach the cache; also bounds the recounts per second.
    const SETTLE: Duration = Duration::from_millis(300);
    loop {
        let mut counts = APIKeyPhase::ALL.map(|phase| (phase, 0i64));
        if ctx.active() {
            for key in keys.state() {
                if let Some(phase) = key.phase()
                    && let Some(slot) = counts.iter_mut().find(|(p, _)| *p == phase)
                {
                    slot.1 += 1;
                }
            }
        }
        ctx.metrics.controller.set_keys(counts);
        ctx.metrics
            .controller
            .set_inbox_deferred(ctx.inbox.lane.len());
        ctx.metrics.controller.set_oldest_pending(if ctx.active() {
            pending_age::oldest_pending(&ctx, Timestamp::now())
        } else {
            [(ApprovalMode::Automatic, 0.0), (ApprovalMode::Manual, 0.0)]
        });
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
            () = ctx.phase_changed.notified() => tokio::time::sleep(SETTLE).await,
        }
    }
}
