//! The inbox's second lane: the owner's copy of an automatically approved key's request.
//!
//! A consumer waits for their key's enforcement; the owner of an automatic product waits for
//! nothing (there is nothing to review). In a burst every write competes for the same API
//! server, so the reconcile of an automatically approved key leaves its request to this lane,
//! which writes only while no reconcile is running — or once an entry has waited
//! [`super::queue::MAX_WAIT`], so a busy controller cannot starve it — [`WORKERS`] requests at a
//! time ([`super::queue`] holds the waiting keys). Every other request
//! (a key waiting for review, a review, a withdrawal, a failure) is written by the reconcile
//! itself, at once.
//!
//! The lane is in memory only: a replica that takes over reconciles every key, which puts back
//! whatever was queued; an entry is re-checked against the caches when its turn comes.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::runtime::reflector::ObjectRef;
use tokio_util::sync::CancellationToken;

use super::queue::Entry;
use super::sync::{Plan, plan};
use crate::Result;
use crate::controller::apikey::phase::{Evaluation, evaluate};
use crate::controller::context::Context;
use crate::discovery::resolve;
use crate::names::key_reason::AUTO_APPROVED;
use crate::resources::{APIKeyPhase, APIProduct};

/// Requests the lane writes at a time.
const WORKERS: usize = 8;
/// Longest pause before a failed write is tried again.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// Whether the request of a key evaluated so may wait for the second lane: approved by its
/// product's automatic mode, so no owner acts on it.
pub(super) fn deferrable(evaluation: &Evaluation) -> bool {
    evaluation.phase == APIKeyPhase::Approved && evaluation.reason == AUTO_APPROVED
}

/// Writes the lane's requests until `shutdown`.
pub(crate) async fn run(ctx: std::sync::Arc<Context>, shutdown: CancellationToken) {
    let lane = &ctx.inbox.lane;
    futures::stream::unfold((), |()| async { Some((lane.next().await, ())) })
        .take_until(shutdown.cancelled())
        .for_each_concurrent(WORKERS, |entry| {
            let ctx = ctx.clone();
            async move {
                ctx.inbox.lane.turn(entry.since).await;
                if let Err(error) = write(&entry, &ctx).await {
                    let delay = Duration::from_secs(1 << entry.attempts.min(6)).min(MAX_RETRY_DELAY);
                    tracing::warn!(key = %entry.key(), %error, ?delay, "writing the owner's copy of the request failed; trying again");
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        ctx.inbox.lane.enqueue(Entry {
                            attempts: entry.attempts + 1,
                            ..entry
                        });
                    });
                }
            }
        })
        .await;
}

/// Writes `entry`'s request if its key, as the caches have it now, still is automatically
/// approved (a reconcile that found otherwise wrote the request itself).
async fn write(entry: &Entry, ctx: &Context) -> Result<()> {
    if !ctx.active() {
        return Ok(());
    }
    let Some(cached) = ctx.keys.get(&entry.key()) else {
        return Ok(());
    };
    if cached.meta().uid.as_deref() != Some(&*entry.uid)
        || cached.meta().deletion_timestamp.is_some()
        || cached.phase() != Some(APIKeyPhase::Approved)
    {
        return Ok(());
    }
    let key = cached.to_key();
    let product_ref = ObjectRef::<APIProduct>::new(&key.spec.api_product_ref.name)
        .within(key.product_namespace().unwrap_or_default());
    let product = ctx.products.get(&product_ref);
    let resolution = product.as_ref().map(|p| resolve(p, &ctx.caches));
    let evaluation = evaluate(
        &key,
        product.as_deref(),
        resolution.as_ref(),
        Timestamp::now(),
    );
    if !deferrable(&evaluation) {
        return Ok(());
    }
    match plan(&key, product.as_deref(), &evaluation, ctx) {
        Plan::Write(write) => write.run(&key, &evaluation, ctx).await,
        Plan::Nothing | Plan::Remove => Ok(()),
    }
}
