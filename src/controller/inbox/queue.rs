//! The queue of the inbox's second lane (see [`super::lane`]): which keys' requests wait, and
//! how many reconciles run (the lane writes only while none does).

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::resources::APIKey;
use crate::resources::cached_key::CachedKey;

/// Longest an entry waits for the reconciles to pause.
pub(super) const MAX_WAIT: Duration = Duration::from_secs(120);
/// How often a waiting entry looks whether the reconciles paused.
const POLL: Duration = Duration::from_millis(20);
/// Room kept for waiting requests once the lane is empty.
const SHRINK_ABOVE: usize = 1024;

/// The keys whose requests wait, in order, and the count of reconciles running.
#[derive(Default)]
pub(crate) struct Lane {
    queue: Mutex<Queue>,
    ready: Notify,
    reconciling: AtomicUsize,
}

/// The waiting entries, and their keys' uids for deduplication.
#[derive(Default)]
struct Queue {
    order: VecDeque<Entry>,
    queued: HashSet<Arc<str>>,
}

/// One key whose request waits: small, since a burst queues every key (no [`ObjectRef`] with
/// its four strings, one copy of the uid shared with the deduplication set).
pub(super) struct Entry {
    /// The key's uid when queued.
    pub(super) uid: Arc<str>,
    /// The key's namespace.
    pub(super) namespace: Box<str>,
    /// The key's name.
    pub(super) name: Box<str>,
    /// When it was queued.
    pub(super) since: Instant,
    /// Failed writes so far.
    pub(super) attempts: u32,
}

/// Counts one running reconcile while it lives.
pub(crate) struct Reconciling<'a>(&'a AtomicUsize);

impl Drop for Reconciling<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Entry {
    /// The key whose request waits, to look up in the key store.
    pub(super) fn key(&self) -> ObjectRef<CachedKey> {
        ObjectRef::new(&self.name).within(&self.namespace)
    }
}

impl Lane {
    /// Queues `key`'s request (once, however often it is asked).
    pub(super) fn push(&self, key: &APIKey) {
        let entry = Entry {
            uid: key.metadata.uid.as_deref().unwrap_or_default().into(),
            namespace: key.namespace().unwrap_or_default().into(),
            name: key.name_any().into(),
            since: Instant::now(),
            attempts: 0,
        };
        self.enqueue(entry);
    }

    /// Queues `entry` unless its key waits already.
    pub(super) fn enqueue(&self, entry: Entry) {
        let mut queue = self.queue.lock().expect("lane");
        if queue.queued.insert(entry.uid.clone()) {
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

    /// The next entry, when there is one.
    pub(super) async fn next(&self) -> Entry {
        loop {
            let notified = self.ready.notified();
            {
                let mut queue = self.queue.lock().expect("lane");
                if let Some(entry) = queue.order.pop_front() {
                    queue.queued.remove(&entry.uid);
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
    pub(super) async fn turn(&self, since: Instant) {
        while self.reconciling.load(Ordering::Relaxed) > 0 && since.elapsed() < MAX_WAIT {
            tokio::time::sleep(POLL).await;
        }
    }
}
