//! One kind's watch: the watcher, its reflector store and the fan-out to subscribers.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{Feed, WatchBackoff, Watched};

/// Events a subscriber may lag behind before the watch waits for it.
const FEED_BUFFER: usize = 1024;

/// A kind to watch, with the subscribers its events go to.
pub(super) struct Source<K: Resource<DynamicType = ()> + Clone + 'static> {
    what: &'static str,
    config: watcher::Config,
    store: Store<K>,
    writer: reflector::store::Writer<K>,
    subscribers: Vec<mpsc::Sender<watcher::Event<K>>>,
    /// Someone reads the store (with or without events).
    wanted: bool,
    /// Whether the reflector store is kept; see [`Source::events_only`].
    keep_store: bool,
}

impl<K: Watched> Source<K> {
    pub(super) fn new(what: &'static str, config: watcher::Config) -> Self {
        let (store, writer) = reflector::store();
        Self {
            what,
            config,
            store,
            writer,
            subscribers: Vec::new(),
            wanted: false,
            keep_store: true,
        }
    }

    /// A kind whose subscribers keep their own compact view and need no reflector store (its
    /// store stays empty): devportal's Secrets, whose key values must not sit in a cache, and
    /// the APIKeyRequests, which the controller keeps smaller than an object with `ObjectMeta`.
    pub(super) fn events_only(mut self) -> Self {
        self.keep_store = false;
        self
    }

    /// The store alone, for a consumer that reads it but needs no events.
    pub(super) fn store(&mut self) -> Store<K> {
        self.wanted = true;
        self.store.clone()
    }

    pub(super) fn subscribe(&mut self) -> Feed<K> {
        self.wanted = true;
        let (tx, events) = mpsc::channel(FEED_BUFFER);
        self.subscribers.push(tx);
        Feed {
            store: self.store.clone(),
            events,
        }
    }

    /// Starts the watch if anyone subscribed; returns its "listed once" signal.
    pub(super) fn spawn(
        self,
        client: &Client,
        shutdown: &CancellationToken,
    ) -> Option<watch::Receiver<bool>> {
        if !self.wanted {
            return None;
        }
        let (listed_tx, listed) = watch::channel(false);
        tokio::spawn(self.run(Api::all(client.clone()), listed_tx, shutdown.clone()));
        Some(listed)
    }

    async fn run(mut self, api: Api<K>, listed: watch::Sender<bool>, shutdown: CancellationToken) {
        loop {
            let stream = watcher(api.clone(), self.config.clone())
                .backoff(WatchBackoff::default())
                .modify(strip);
            let mut stream = std::pin::pin!(stream);
            loop {
                let item = tokio::select! {
                    () = shutdown.cancelled() => return,
                    item = stream.next() => item,
                };
                match item {
                    Some(Ok(event)) => {
                        if self.keep_store {
                            self.writer.apply_watcher_event(&event);
                        }
                        // A (re-)list reaches the store only at InitDone, when the store swaps
                        // in the new list. Subscribers get the listed objects then too, read back
                        // from the store (one at a time: no second copy of the whole list): a
                        // reconcile triggered by an InitApply would look the object up in the
                        // store before the swap, find a newly created object missing, and drop
                        // it for good ("triggered object is gone").
                        let ready: Box<dyn Iterator<Item = watcher::Event<K>> + Send> = match event
                        {
                            // Without a store there is no swap to wait for: a subscriber keeping
                            // its own view of a re-list (the Secret cache) takes the list as it
                            // comes.
                            event if !self.keep_store => {
                                if matches!(event, watcher::Event::InitDone) {
                                    listed.send_replace(true);
                                }
                                Box::new(std::iter::once(event))
                            }
                            watcher::Event::Init | watcher::Event::InitApply(_) => {
                                Box::new(std::iter::empty())
                            }
                            watcher::Event::InitDone => {
                                listed.send_replace(true);
                                let objects = self.store.state();
                                Box::new(
                                    std::iter::once(watcher::Event::Init)
                                        .chain(objects.into_iter().map(|object| {
                                            watcher::Event::InitApply(Arc::unwrap_or_clone(object))
                                        }))
                                        .chain(std::iter::once(watcher::Event::InitDone)),
                                )
                            }
                            other => Box::new(std::iter::once(other)),
                        };
                        for event in ready {
                            if !self.publish(event, &shutdown).await {
                                return;
                            }
                        }
                    }
                    Some(Err(error)) if must_relist(&error) => {
                        tracing::warn!(watch = self.what, %error, "resource version expired; listing again");
                        break;
                    }
                    Some(Err(error)) => {
                        tracing::warn!(watch = self.what, %error, "watch failed; retrying");
                    }
                    None => break,
                }
            }
            // A fresh watcher lists first; pause briefly so a persistent 410 cannot spin.
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// Sends `event` to every subscriber; false when the process is stopping.
    async fn publish(&mut self, event: watcher::Event<K>, shutdown: &CancellationToken) -> bool {
        let mut gone = Vec::new();
        for (index, subscriber) in self.subscribers.iter().enumerate() {
            tokio::select! {
                () = shutdown.cancelled() => return false,
                sent = subscriber.send(event.clone()) => if sent.is_err() { gone.push(index) },
            }
        }
        for index in gone.into_iter().rev() {
            self.subscribers.remove(index);
        }
        true
    }
}

/// Whether `error` means the watch must list again rather than retry: the API server no longer
/// has the resource version it resumes from. kube's watcher lists again when a 410 arrives inside
/// a watch, but retries the same version forever when the API server refuses to start the watch
/// with a 410 — which a restarted API server does until its cache reaches back that far.
pub fn must_relist(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::WatchStartFailed(kube::Error::Api(status)) => status.code == 410,
        watcher::Error::WatchError(status) => status.code == 410,
        _ => false,
    }
}

/// Drops what no consumer reads from a cached object, to keep the caches small.
fn strip<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}
