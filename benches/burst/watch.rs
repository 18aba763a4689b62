//! The enforcement Secret watch: when did the N-th enforcement Secret appear? Metadata only, so
//! the harness's side of it costs little even at 50,000 keys.

use std::collections::HashSet;
use std::time::Instant;

use devportal::names::{DEFAULT_KUADRANT_NAMESPACE, ROLE_LABEL};
use devportal::secrets::Role;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::task::JoinHandle;

/// Starts watching the enforcement namespace; the task ends at the moment `n` distinct
/// enforcement Secrets have been seen.
pub fn all_enforcement_secrets(client: &Client, n: usize) -> JoinHandle<Instant> {
    let secrets =
        Api::<PartialObjectMeta<Secret>>::namespaced(client.clone(), DEFAULT_KUADRANT_NAMESPACE);
    let selector = format!("{ROLE_LABEL}={}", Role::Enforcement.as_str());
    let watch = watcher(secrets, watcher::Config::default().labels(&selector))
        .default_backoff()
        .applied_objects()
        .try_filter_map(|s| async move { Ok(s.metadata.name) });
    tokio::spawn(async move {
        let mut seen = HashSet::with_capacity(n);
        let mut watch = std::pin::pin!(watch);
        while let Some(event) = watch.next().await {
            // A watch error (a dropped connection) is retried by the watcher itself.
            if let Ok(name) = event {
                seen.insert(name);
                if seen.len() == n {
                    return Instant::now();
                }
            }
        }
        panic!("the Secret watch ended early");
    })
}
