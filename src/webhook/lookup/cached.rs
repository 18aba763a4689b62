//! [`CachedLookup`]: the webhook's view of the cluster, from the process's shared watch stores.
//!
//! APIProducts and HTTPRoutes are read from the shared reflector stores ([`Feeds`]); APIKey events
//! feed [`KeyCounts`]. A product or route missing from its store is fetched once live, so an
//! object created a moment ago, whose watch event is still in flight, is never wrongly rejected;
//! the rules also re-read live before denying on what a cached (possibly stale) copy says. Every
//! live call is bounded by [`LIVE_CALL_TIMEOUT`] and charged to a [`LiveBudget`] (the caller's own
//! budget, its lane's share and the ceiling), so the webhook is no 1:1 amplifier of API calls and
//! no caller can spend everyone's budget: over the rate a lookup fails at once (the rules deny,
//! saying to retry). Ownership is a SubjectAccessReview, the one live call an approval costs;
//! a front end's claim to act for a user is another (`impersonate` on that user).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::rate::LiveBudget;
use super::{Lookup, Read};
use crate::names::GROUP;
use crate::resources::cached_key::CachedKey;
use crate::resources::gateway::HTTPRoute;
use crate::resources::{APIKeyPolicy, APIKeyRequest, APIProduct};
use crate::watches::{Feed, Watches};
use crate::webhook::key_counts::{Claim, KeyCounts};
use crate::{Error, Result};

/// A live call must answer within this time: the API server gives the whole admission at most
/// `timeoutSeconds` (5 s), and a late answer is as good as none.
const LIVE_CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// Bounds a live API call by [`LIVE_CALL_TIMEOUT`].
async fn bounded<T>(
    what: &'static str,
    call: impl Future<Output = std::result::Result<T, kube::Error>>,
) -> Result<T> {
    match tokio::time::timeout(LIVE_CALL_TIMEOUT, call).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(Error::Timeout(what)),
    }
}

/// The cluster as seen through watch caches, plus live fallbacks.
#[derive(Clone)]
pub struct CachedLookup {
    client: Client,
    products: Store<APIProduct>,
    routes: Store<HTTPRoute>,
    policies: Store<APIKeyPolicy>,
    namespaces: Store<PartialObjectMeta<Namespace>>,
    keys: Arc<KeyCounts>,
    keys_synced: watch::Receiver<bool>,
    live_calls: Arc<LiveBudget>,
}

/// The watches the webhook reads, subscribed before the process starts them.
pub struct Feeds {
    products: Store<APIProduct>,
    routes: Store<HTTPRoute>,
    policies: Store<APIKeyPolicy>,
    namespaces: Store<PartialObjectMeta<Namespace>>,
    keys: Feed<CachedKey>,
}

impl Feeds {
    /// Subscribes to APIProducts, HTTPRoutes, APIKeyPolicies and namespaces (stores only) and
    /// APIKeys (for the live-keys counts).
    pub fn subscribe(watches: &mut Watches) -> Self {
        Self {
            products: watches.products_store(),
            routes: watches.routes_store(),
            policies: watches.policies_store(),
            namespaces: watches.namespaces_store(),
            keys: watches.keys(),
        }
    }
}

impl CachedLookup {
    /// Answers from `feeds`; the live-key counts follow the APIKey events until `shutdown`. Live
    /// calls are charged to `live_calls` each.
    pub fn new(
        client: Client,
        feeds: Feeds,
        live_calls: LiveBudget,
        shutdown: &CancellationToken,
    ) -> Self {
        let keys = Arc::new(KeyCounts::default());
        let (synced_tx, keys_synced) = watch::channel(false);
        let counts = keys.clone();
        let events = feeds.keys.events();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            loop {
                let event = tokio::select! {
                    () = shutdown.cancelled() => return,
                    event = events.next() => event,
                };
                let Some(Ok(event)) = event else { return };
                counts.apply(&event);
                if matches!(event, watcher::Event::InitDone) {
                    synced_tx.send_replace(true);
                }
            }
        });
        CachedLookup {
            client,
            products: feeds.products,
            routes: feeds.routes,
            policies: feeds.policies,
            namespaces: feeds.namespaces,
            keys,
            keys_synced,
            live_calls: Arc::new(live_calls),
        }
    }

    /// Charges one live call to the admission it is made for, or fails when a budget it draws
    /// on is spent.
    fn live_call(&self, what: &'static str) -> Result<()> {
        self.live_calls.take(what)
    }

    /// Resolves once every cache has completed its initial list.
    pub async fn wait_until_ready(&self) -> Result<()> {
        let stopped =
            |what: &str| Error::Cache(format!("the {what} watch stopped before it synced"));
        self.products
            .wait_until_ready()
            .await
            .map_err(|_| stopped("apiproducts"))?;
        self.routes
            .wait_until_ready()
            .await
            .map_err(|_| stopped("httproutes"))?;
        self.policies
            .wait_until_ready()
            .await
            .map_err(|_| stopped("apikeypolicies"))?;
        self.namespaces
            .wait_until_ready()
            .await
            .map_err(|_| stopped("namespaces"))?;
        self.keys_synced
            .clone()
            .wait_for(|synced| *synced)
            .await
            .map_err(|_| stopped("apikeys"))?;
        Ok(())
    }

    /// The cached object, or one live GET when the cache does not have it (yet) or `read` asks
    /// for a live one.
    async fn lookup<K>(
        &self,
        store: &Store<K>,
        namespace: &str,
        name: &str,
        read: Read,
    ) -> Result<Option<Arc<K>>>
    where
        K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        if read == Read::Cached
            && let Some(object) = store.get(&ObjectRef::new(name).within(namespace))
        {
            return Ok(Some(object));
        }
        self.live_call("live GET")?;
        let api = Api::<K>::namespaced(self.client.clone(), namespace);
        let live = bounded("live GET", api.get_opt(name)).await?;
        Ok(live.map(Arc::new))
    }
}

impl Lookup for CachedLookup {
    async fn product(
        &self,
        namespace: &str,
        name: &str,
        read: Read,
    ) -> Result<Option<Arc<APIProduct>>> {
        self.lookup(&self.products, namespace, name, read).await
    }

    async fn route(
        &self,
        namespace: &str,
        name: &str,
        read: Read,
    ) -> Result<Option<Arc<HTTPRoute>>> {
        self.lookup(&self.routes, namespace, name, read).await
    }

    fn products_on_route(&self, namespace: &str, route: &str) -> Vec<Arc<APIProduct>> {
        self.products
            .state()
            .into_iter()
            .filter(|p| {
                p.metadata.namespace.as_deref() == Some(namespace)
                    && p.spec.target_ref.name == route
            })
            .collect()
    }

    fn policies(&self) -> Vec<Arc<APIKeyPolicy>> {
        self.policies.state()
    }

    fn namespace_labels(&self, name: &str) -> Option<BTreeMap<String, String>> {
        let namespace = self.namespaces.get(&ObjectRef::new(name))?;
        Some(namespace.metadata.labels.clone().unwrap_or_default())
    }

    async fn key_request(&self, namespace: &str, name: &str) -> Result<Option<Arc<APIKeyRequest>>> {
        self.live_call("live GET")?;
        let api = Api::<APIKeyRequest>::namespaced(self.client.clone(), namespace);
        let live = bounded("live GET", api.get_opt(name)).await?;
        Ok(live.map(Arc::new))
    }

    fn admit_key(&self, claim: &Claim, now: Timestamp) -> std::result::Result<(), usize> {
        self.keys.admit(claim, now)
    }

    async fn may_approve(&self, user: &UserInfo, namespace: &str, product: &str) -> Result<bool> {
        self.access_review(
            user,
            ResourceAttributes {
                group: Some(GROUP.into()),
                resource: Some("apiproducts".into()),
                verb: Some("approve".into()),
                name: Some(product.into()),
                namespace: Some(namespace.into()),
                ..ResourceAttributes::default()
            },
        )
        .await
    }

    async fn may_impersonate(&self, user: &UserInfo, target: &str) -> Result<bool> {
        self.access_review(
            user,
            ResourceAttributes {
                group: Some(String::new()),
                resource: Some("users".into()),
                verb: Some("impersonate".into()),
                name: Some(target.into()),
                ..ResourceAttributes::default()
            },
        )
        .await
    }
}

impl CachedLookup {
    /// Asks the API server (a SubjectAccessReview, one rate-limited live call) whether `user` may
    /// do what `attributes` say.
    async fn access_review(&self, user: &UserInfo, attributes: ResourceAttributes) -> Result<bool> {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username.clone(),
                groups: user.groups.clone(),
                uid: user.uid.clone(),
                extra: user.extra.clone(),
                resource_attributes: Some(attributes),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        self.live_call("SubjectAccessReview")?;
        let api = Api::<SubjectAccessReview>::all(self.client.clone());
        let answer = bounded(
            "SubjectAccessReview",
            api.create(&PostParams::default(), &review),
        )
        .await?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }
}

#[cfg(test)]
#[path = "cached_tests.rs"]
mod tests;
