//! [`KubeCluster`]: the webhook's view of the cluster, from kube-runtime watch caches.
//!
//! APIProducts and HTTPRoutes are mirrored by reflectors; APIKeys feed a [`KeyIndex`] of live-key
//! counts. A product or route missing from its cache is fetched once live, so an object created a
//! moment ago, whose watch event is still in flight, is never wrongly rejected; the decisions also
//! re-read live before denying on what a cached (possibly stale) copy says. Ownership is a
//! SubjectAccessReview, the one live call an approval costs.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::cluster::{Cluster, Read};
use super::keyindex::KeyIndex;
use crate::resources::gateway::HTTPRoute;
use crate::resources::{APIKey, APIProduct, GROUP};
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
pub struct KubeCluster {
    client: Client,
    products: Store<APIProduct>,
    routes: Store<HTTPRoute>,
    keys: Arc<KeyIndex>,
    keys_synced: watch::Receiver<bool>,
}

/// Runs `stream` until it ends or `shutdown` is cancelled, logging watch errors (the stream backs
/// off and retries by itself).
async fn drive<S, T>(
    what: &'static str,
    stream: S,
    shutdown: CancellationToken,
    mut each: impl FnMut(T),
) where
    S: Stream<Item = std::result::Result<T, watcher::Error>>,
{
    let mut stream = std::pin::pin!(stream);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            item = stream.next() => match item {
                Some(Ok(item)) => each(item),
                Some(Err(err)) => tracing::warn!(cache = what, error = %err, "watch failed; retrying"),
                None => return,
            }
        }
    }
}

/// Starts a reflector for `K` in all namespaces and returns its store.
fn mirror<K>(client: &Client, what: &'static str, shutdown: &CancellationToken) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(Api::<K>::all(client.clone()), watcher::Config::default())
            .default_backoff()
            .modify(|o| o.managed_fields_mut().clear()),
    );
    tokio::spawn(drive(what, stream, shutdown.clone(), |_| {}));
    store
}

impl KubeCluster {
    /// Starts the watches; they run until `shutdown` is cancelled.
    pub fn start(client: Client, shutdown: &CancellationToken) -> Self {
        let products = mirror::<APIProduct>(&client, "apiproducts", shutdown);
        let routes = mirror::<HTTPRoute>(&client, "httproutes", shutdown);
        let keys = Arc::new(KeyIndex::default());
        let (synced_tx, keys_synced) = watch::channel(false);
        let index = keys.clone();
        let stream = watcher(
            Api::<APIKey>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff();
        tokio::spawn(drive("apikeys", stream, shutdown.clone(), move |event| {
            index.apply(&event);
            if matches!(event, watcher::Event::InitDone) {
                synced_tx.send_replace(true);
            }
        }));
        KubeCluster {
            client,
            products,
            routes,
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

impl Cluster for KubeCluster {
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

    fn live_keys(&self, user: &str, namespace: &str, product: &str) -> usize {
        self.keys.live_keys(user, namespace, product)
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
