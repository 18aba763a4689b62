//! [`CachedLookup`]: the webhook's view of the cluster, from the process's shared watch stores.
//!
//! APIProducts and HTTPRoutes are read from the shared reflector stores ([`Feeds`]); APIKey events
//! feed [`KeyCounts`]. A product or route missing from its store is fetched once live, so an
//! object created a moment ago, whose watch event is still in flight, is never wrongly rejected;
//! the rules also re-read live before denying on what a cached (possibly stale) copy says. Every
//! live call is bounded by [`LIVE_CALL_TIMEOUT`]. Ownership is a SubjectAccessReview, the one live
//! call an approval costs.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Lookup, Read};
use crate::names::GROUP;
use crate::resources::APIProduct;
use crate::resources::cached_key::CachedKey;
use crate::resources::gateway::HTTPRoute;
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
    keys: Arc<KeyCounts>,
    keys_synced: watch::Receiver<bool>,
}

/// The watches the webhook reads, subscribed before the process starts them.
pub struct Feeds {
    products: Store<APIProduct>,
    routes: Store<HTTPRoute>,
    keys: Feed<CachedKey>,
}

impl Feeds {
    /// Subscribes to APIProducts and HTTPRoutes (stores only) and APIKeys (for the live-keys
    /// counts).
    pub fn subscribe(watches: &mut Watches) -> Self {
        Self {
            products: watches.products_store(),
            routes: watches.routes_store(),
            keys: watches.keys(),
        }
    }
}

impl CachedLookup {
    /// Answers from `feeds`; the live-key counts follow the APIKey events until `shutdown`.
    pub fn new(client: Client, feeds: Feeds, shutdown: &CancellationToken) -> Self {
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
            keys,
            keys_synced,
        }
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

    fn admit_key(&self, claim: &Claim, now: Timestamp) -> std::result::Result<(), usize> {
        self.keys.admit(claim, now)
    }

    async fn may_approve(&self, user: &UserInfo, namespace: &str, product: &str) -> Result<bool> {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username.clone(),
                groups: user.groups.clone(),
                uid: user.uid.clone(),
                extra: user.extra.clone(),
                resource_attributes: Some(ResourceAttributes {
                    group: Some(GROUP.into()),
                    resource: Some("apiproducts".into()),
                    verb: Some("approve".into()),
                    name: Some(product.into()),
                    namespace: Some(namespace.into()),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let api = Api::<SubjectAccessReview>::all(self.client.clone());
        let answer = bounded(
            "SubjectAccessReview",
            api.create(&PostParams::default(), &review),
        )
        .await?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }
}
