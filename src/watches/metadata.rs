//! A metadata-only watch of every Secret in the cluster, for the consumers' own Secrets that
//! APIKeys name in `spec.secretRef` (they carry no label devportal could select on).
//!
//! Only metadata travels (no `data`, so no key value reaches devportal this way) and nothing is
//! kept: each event is handed on and dropped, and the subscriber keeps only what it needs (the
//! controller: an index of the Secrets some key names). The initial list is read in pages of 500,
//! so memory does not grow with the number of Secrets in the cluster; the API server streams every
//! Secret's metadata once at start and every change after.

use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{WatchBackoff, must_relist};

/// Events the subscriber may lag behind before the watch waits for it.
const FEED_BUFFER: usize = 1024;

/// Every Secret's metadata as it changes: created, updated, deleted, or listed again.
pub struct SecretMetadataFeed {
    events: mpsc::Receiver<PartialObjectMeta<Secret>>,
}

impl SecretMetadataFeed {
    /// The touched Secrets, in the shape of `touched_objects()` of a watcher stream.
    pub fn touched(
        self,
    ) -> impl Stream<Item = Result<PartialObjectMeta<Secret>, watcher::Error>> + Send {
        futures::stream::unfold(self.events, |mut events| async move {
            let meta = events.recv().await?;
            Some((Ok(meta), events))
        })
    }
}

/// The watch, started only if someone subscribed.
#[derive(Default)]
pub(super) struct SecretMetadataSource {
    subscriber: Option<mpsc::Sender<PartialObjectMeta<Secret>>>,
}

impl SecretMetadataSource {
    pub(super) fn subscribe(&mut self) -> SecretMetadataFeed {
        let (tx, events) = mpsc::channel(FEED_BUFFER);
        self.subscriber = Some(tx);
        SecretMetadataFeed { events }
    }

    pub(super) fn spawn(self, client: &Client, shutdown: &CancellationToken) {
        if let Some(subscriber) = self.subscriber {
            tokio::spawn(run(
                Api::all_with(client.clone(), &()),
                subscriber,
                shutdown.clone(),
            ));
        }
    }
}

async fn run(
    api: Api<PartialObjectMeta<Secret>>,
    subscriber: mpsc::Sender<PartialObjectMeta<Secret>>,
    shutdown: CancellationToken,
) {
    loop {
        let stream = watcher(api.clone(), watcher::Config::default().page_size(500))
            .backoff(WatchBackoff::default());
        let mut stream = std::pin::pin!(stream);
        loop {
            let item = tokio::select! {
                () = shutdown.cancelled() => return,
                item = stream.next() => item,
            };
            let mut meta = match item {
                Some(Ok(
                    watcher::Event::Apply(meta)
                    | watcher::Event::InitApply(meta)
                    | watcher::Event::Delete(meta),
                )) => meta,
                Some(Ok(watcher::Event::Init | watcher::Event::InitDone)) => continue,
                Some(Err(error)) if must_relist(&error) => {
                    tracing::warn!(watch = "secret metadata", %error, "resource version expired; listing again");
                    break;
                }
                Some(Err(error)) => {
                    tracing::warn!(watch = "secret metadata", %error, "watch failed; retrying");
                    continue;
                }
                None => break,
            };
            meta.metadata.managed_fields = None;
            tokio::select! {
                () = shutdown.cancelled() => return,
                sent = subscriber.send(meta) => if sent.is_err() { return },
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}
