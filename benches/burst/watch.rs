//! The watches that time a run: when did the N-th enforcement Secret appear (metadata only, so
//! the harness's side of it costs little even at 50,000 keys), and when did the N-th owner's copy
//! (an APIKeyRequest with a status) appear?

use std::collections::HashSet;
use std::time::Instant;

use devportal::names::{DEFAULT_KUADRANT_NAMESPACE, ROLE_LABEL};
use devportal::resources::APIKeyRequest;
use devportal::secrets::Role;
use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::task::JoinHandle;

/// Starts watching the enforcement namespace; the task ends at the moment `n` distinct
/// enforcement Secrets have been seen.
pub fn all_enforcement_secrets(client: &Client, n: usize) -> JoinHandle<Instant> {
    until_distinct(enforcement_secret_names(client), n, "the Secret watch")
}

/// The names of the enforcement Secrets in the enforcement namespace as a watch sees them
/// (metadata only, selected by their role label), from its first list on.
pub fn enforcement_secret_names(
    client: &Client,
) -> impl Stream<Item = Result<String, watcher::Error>> + Send + 'static {
    let secrets =
        Api::<PartialObjectMeta<Secret>>::namespaced(client.clone(), DEFAULT_KUADRANT_NAMESPACE);
    let selector = format!("{ROLE_LABEL}={}", Role::Enforcement.as_str());
    watcher(secrets, watcher::Config::default().labels(&selector))
        .default_backoff()
        .applied_objects()
        .try_filter_map(|s| async move { Ok(s.metadata.name) })
}

/// Starts watching the APIKeyRequests in `namespace`; the task ends at the moment `n` distinct
/// requests with a status phase have been seen.
pub fn all_requests_written(client: &Client, namespace: &str, n: usize) -> JoinHandle<Instant> {
    let requests = Api::<APIKeyRequest>::namespaced(client.clone(), namespace);
    let names = watcher(requests, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .try_filter_map(|r| async move { Ok(r.status.and_then(|s| s.phase).and(r.metadata.name)) });
    until_distinct(names, n, "the APIKeyRequest watch")
}

/// A task that reads `names` until `n` distinct ones were seen, and returns that moment.
fn until_distinct(
    names: impl Stream<Item = Result<String, watcher::Error>> + Send + 'static,
    n: usize,
    what: &'static str,
) -> JoinHandle<Instant> {
    tokio::spawn(async move {
        let mut seen = HashSet::with_capacity(n);
        let mut names = std::pin::pin!(names);
        while let Some(event) = names.next().await {
            // A watch error (a dropped connection) is retried by the watcher itself.
            if let Ok(name) = event {
                seen.insert(name);
                if seen.len() == n {
                    return Instant::now();
                }
            }
        }
        panic!("{what} ended early");
    })
}
