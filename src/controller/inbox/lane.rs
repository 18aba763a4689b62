//! The inbox's second lane: the owner's copy of an automatically approved key's request.
//!
//! A consumer waits for their key's enforcement; the owner of an automatic product waits for
//! nothing (there is nothing to review). In a burst every write competes for the same API
//! server, so the reconcile of an automatically approved key leaves its request to this lane,
//! which writes only while no reconcile is running — or once an entry has waited [`MAX_WAIT`],
//! so a busy controller cannot starve it — [`WORKERS`] requests at a time. Every other request
//! (a key waiting for review, a review, a withdrawal, a failure) is written by the reconcile
//! itself, at once.
//!
//! The lane is in memory only: a replica that takes over reconciles every key, which puts back
//! whatever was queued; an entry is re-checked against the caches when its turn comes.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::sync::{Plan, plan};
use crate::Result;
use crate::controller::apikey::phase::{Evaluation, evaluate};
use crate::controller::context::Context;
use crate::discovery::resolve;
use crate::names::key_reason::AUTO_APPROVED;
use crate::resources::cached_key::CachedKey;
use crate::resources::{APIKey, APIKeyPhase, APIProduct};

/// Longest an entry waits for the reconciles to pause.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(120);
/// Requests the lane writes at a time.
const WORKERS: usize = 8;
/// How often a waiting entry looks whether the reconciles paused.
const POLL: Duration = Duration::from_millis(20);
/// Room kept for waiting requests once the lane is empty.
const SHRINK_ABOVE: usize = 1024;
/// Longest pause before a failed write is tried again.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// Whether the request of a key evaluated so may wait for the second lane: approved by its
/// product's automatic mode, so no owner acts on it.
pub(super) fn deferrable(evaluation: &Evaluation) -> bool {
    evaluation.phase == APIKeyPhase::Approved && evaluation.reason == AUTO_APPROVED
}

/// The keys whose requests wait, in order, and the count of reconciles running.
#[derive(Default)]
pub(crate) struct Lane {
    queue: Mutex<Queue>,
    ready: Notify,
    reconciling: AtomicUsize,
}

#[derive(Default)]
struct Queue {
    order: VecDeque<Entry>,
    queued: HashSet<ObjectRef<CachedKey>>,
}

struct Entry {
    key: ObjectRef<CachedKey>,
    uid: String,
    since: Instant,
    attempts: u32,
}

/// Counts one running reconcile while it lives.
pub(crate) struct Reconciling<'a>(&'a AtomicUsize);

impl Drop for Reconciling<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Lane {
    /// Queues `key`'s request (once, however often it is asked).
    pub(super) fn push(&self, key: &APIKey) {
        let entry = Entry {
            key: ObjectRef::new(&key.name_any()).within(&key.namespace().unwrap_or_default()),
            uid: key.metadata.uid.clone().unwrap_or_default(),
            since: Instant::now(),
            attempts: 0,
        };
        self.enqueue(entry);
    }

    fn enqueue(&self, entry: Entry) {
        let mut queue = self.queue.lock().expect("lane");
        if queue.queued.insert(entry.key.clone()) {
            queue.order.push_back(entry);
            drop(queue);
            self.ready.notify_one();
        }
    }

    /// Counts a reconcile as running until the guard drops: the lane waits meanwhile.
    pub(crate) fn reconciling(&self) -> Reconciling<'_> {
        self.reconciling.fetch_add(1, Ordering::Relaxed);
        Reconciling(&self.reconciling)
    }

    /// How many requests wait.
    pub(crate) fn len(&self) -> usize {
        self.queue.lock().expect("lane").order.len()
    }

    async fn next(&self) -> Entry {
        loop {
            let notified = self.ready.notified();
            {
                let mut queue = self.queue.lock().expect("lane");
                if let Some(entry) = queue.order.pop_front() {
                    queue.queued.remove(&entry.key);
                    if queue.order.is_empty() && queue.order.capacity() > SHRINK_ABOVE {
                        // A burst is over: give back what it took.
                        queue.order.shrink_to_fit();
                        queue.queued.shrink_to_fit();
                    }
                    return entry;
                }
            }
            notified.await;
        }
    }

    /// Waits until no reconcile runs, or until the entry queued at `since` has waited enough.
    async fn turn(&self, since: Instant) {
        while self.reconciling.load(Ordering::Relaxed) > 0 && since.elapsed() < MAX_WAIT {
            tokio::time::sleep(POLL).await;
        }
    }
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
                    tracing::warn!(key = %entry.key, %error, ?delay, "writing the owner's copy of the request failed; trying again");
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
    let Some(cached) = ctx.keys.get(&entry.key) else {
        return Ok(());
    };
    if cached.meta().uid.as_deref() != Some(entry.uid.as_str())
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
