//! One watch per kind per process, shared by the webhook and the controller.
//!
//! Each role asks [`Watches`] for the kinds it reads before anything starts; every kind is then
//! watched once, whatever number of consumers it has. A kind's events go into its reflector store
//! (when someone reads one) and then to every subscriber, in order. The watches run on every
//! replica from start to shutdown, leader or not, so a replica that wins the Lease starts with
//! full caches; [`Synced`] tells `/readyz` and the reconcilers when every initial list is in.
//!
//! A watch whose resource version the API server no longer has (HTTP 410 "too old resource
//! version", typical after an API server restart) is started over with a fresh list instead of
//! retrying the same stale version.

mod backoff;
mod metadata;
mod source;

use std::fmt::Debug;

use futures::Stream;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

pub use backoff::WatchBackoff;
pub use metadata::SecretMetadataFeed;
use metadata::SecretMetadataSource;
use source::Source;
pub use source::must_relist;

use crate::names;
use crate::resources::cached_key::CachedKey;
use crate::resources::cached_request::CachedRequest;
use crate::resources::gateway::HTTPRoute;
use crate::resources::kuadrant::{AuthPolicy, PlanPolicy};
use crate::resources::{APIKeyApproval, APIKeyPolicy, APIProduct};

/// The kinds a process watches, and who reads them.
pub struct Watches {
    client: Client,
    products: Source<APIProduct>,
    routes: Source<HTTPRoute>,
    auth_policies: Source<AuthPolicy>,
    plan_policies: Source<PlanPolicy>,
    keys: Source<CachedKey>,
    requests: Source<CachedRequest>,
    approvals: Source<APIKeyApproval>,
    policies: Source<APIKeyPolicy>,
    namespaces: Source<PartialObjectMeta<Namespace>>,
    secrets: Source<Secret>,
    secret_metadata: SecretMetadataSource,
}

/// A subscriber's view of one kind: the shared store and its own copy of the event stream.
pub struct Feed<K: Resource<DynamicType = ()> + Clone + 'static> {
    /// The reflector store every consumer of the kind shares.
    pub store: Store<K>,
    events: mpsc::Receiver<watcher::Event<K>>,
}

impl<K: Resource<DynamicType = ()> + Clone + Send + 'static> Feed<K> {
    /// The events, in the shape of a watcher stream (errors are handled by the source and never
    /// reach subscribers), for `touched_objects()` and friends.
    pub fn events(self) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send {
        futures::stream::unfold(self.events, |mut events| async move {
            let event = events.recv().await?;
            Some((Ok(event), events))
        })
    }
}

/// Resolves to true once every watch of the process has completed its first list.
#[derive(Clone, Debug)]
pub struct Synced(watch::Receiver<bool>);

impl Synced {
    /// Waits until every watch has listed once; false when the process stops first.
    pub async fn wait(&self) -> bool {
        self.0.clone().wait_for(|synced| *synced).await.is_ok()
    }

    /// Whether every watch has listed once.
    pub fn is_synced(&self) -> bool {
        *self.0.borrow()
    }
}

impl Watches {
    /// Nothing is watched until someone subscribes and [`Watches::start`] runs.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            products: Source::new("apiproducts", watcher::Config::default()),
            routes: Source::new("httproutes", watcher::Config::default()),
            auth_policies: Source::new("authpolicies", watcher::Config::default()),
            plan_policies: Source::new("planpolicies", watcher::Config::default()),
            keys: Source::new("apikeys", watcher::Config::default()),
            // The controller keeps its own compact view (controller/inbox/requests.rs).
            requests: Source::new("apikeyrequests", watcher::Config::default()).events_only(),
            approvals: Source::new("apikeyapprovals", watcher::Config::default()),
            policies: Source::new("apikeypolicies", watcher::Config::default()),
            // Only the labels are read (APIKeyPolicies select consumer namespaces by them); the
            // cache keeps the metadata alone.
            namespaces: Source::new("namespaces", watcher::Config::default()),
            secrets: Source::new(
                "secrets",
                watcher::Config::default().labels(names::MANAGED_SELECTOR),
            )
            .events_only(),
            secret_metadata: SecretMetadataSource::default(),
        }
    }

    /// APIProducts in every namespace.
    pub fn products(&mut self) -> Feed<APIProduct> {
        self.products.subscribe()
    }

    /// The APIProduct store alone, for a consumer that needs no events.
    pub fn products_store(&mut self) -> Store<APIProduct> {
        self.products.store()
    }

    /// The HTTPRoute store alone, for a consumer that needs no events.
    pub fn routes_store(&mut self) -> Store<HTTPRoute> {
        self.routes.store()
    }

    /// HTTPRoutes in every namespace.
    pub fn routes(&mut self) -> Feed<HTTPRoute> {
        self.routes.subscribe()
    }

    /// Kuadrant AuthPolicies in every namespace.
    pub fn auth_policies(&mut self) -> Feed<AuthPolicy> {
        self.auth_policies.subscribe()
    }

    /// Kuadrant PlanPolicies in every namespace.
    pub fn plan_policies(&mut self) -> Feed<PlanPolicy> {
        self.plan_policies.subscribe()
    }

    /// APIKeys in every namespace, in their compact cached form.
    pub fn keys(&mut self) -> Feed<CachedKey> {
        self.keys.subscribe()
    }

    /// APIKeyRequests in every namespace, in their compact cached form, as events only (the
    /// feed's store stays empty: the subscriber keeps its own view).
    pub fn requests(&mut self) -> Feed<CachedRequest> {
        self.requests.subscribe()
    }

    /// APIKeyApprovals in every namespace.
    pub fn approvals(&mut self) -> Feed<APIKeyApproval> {
        self.approvals.subscribe()
    }

    /// APIKeyPolicies (cluster-scoped).
    pub fn policies(&mut self) -> Feed<APIKeyPolicy> {
        self.policies.subscribe()
    }

    /// The APIKeyPolicy store alone, for a consumer that needs no events.
    pub fn policies_store(&mut self) -> Store<APIKeyPolicy> {
        self.policies.store()
    }

    /// Every namespace's metadata: the labels APIKeyPolicies select on, and the enforcement
    /// namespace's deletion and return.
    pub fn namespaces(&mut self) -> Feed<PartialObjectMeta<Namespace>> {
        self.namespaces.subscribe()
    }

    /// Every namespace's metadata (its labels, which APIKeyPolicies select on), store only.
    pub fn namespaces_store(&mut self) -> Store<PartialObjectMeta<Namespace>> {
        self.namespaces.store()
    }

    /// The Secrets devportal wrote (selected by its managed label), as events only: the
    /// subscriber keeps digests, never the values (the feed's store stays empty).
    pub fn secrets(&mut self) -> Feed<Secret> {
        self.secrets.subscribe()
    }

    /// Every Secret's metadata, unselected and uncached (see [`SecretMetadataFeed`]). One
    /// subscriber; it does not count towards [`Synced`].
    pub fn secret_metadata(&mut self) -> SecretMetadataFeed {
        self.secret_metadata.subscribe()
    }

    /// Starts every watch that has a subscriber; they run until `shutdown` is cancelled.
    pub fn start(self, shutdown: &CancellationToken) -> Synced {
        let Self {
            client,
            products,
            routes,
            auth_policies,
            plan_policies,
            keys,
            requests,
            approvals,
            policies,
            namespaces,
            secrets,
            secret_metadata,
        } = self;
        secret_metadata.spawn(&client, shutdown);
        let mut synced = Vec::new();
        synced.extend(products.spawn(&client, shutdown));
        synced.extend(routes.spawn(&client, shutdown));
        synced.extend(auth_policies.spawn(&client, shutdown));
        synced.extend(plan_policies.spawn(&client, shutdown));
        synced.extend(keys.spawn(&client, shutdown));
        synced.extend(requests.spawn(&client, shutdown));
        synced.extend(approvals.spawn(&client, shutdown));
        synced.extend(policies.spawn(&client, shutdown));
        synced.extend(namespaces.spawn(&client, shutdown));
        synced.extend(secrets.spawn(&client, shutdown));
        let (all_tx, all_rx) = watch::channel(false);
        tokio::spawn(async move {
            for mut each in synced {
                if each.wait_for(|listed| *listed).await.is_err() {
                    return;
                }
            }
            tracing::info!("watch caches synced");
            all_tx.send_replace(true);
            // Keep the sender alive: readers see `true` until the process exits.
            all_tx.closed().await;
        });
        Synced(all_rx)
    }
}

/// What a kind needs to be watched by [`Source`].
pub trait Watched:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}

impl<K> Watched for K where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}
