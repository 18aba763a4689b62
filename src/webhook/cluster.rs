//! What the admission decisions need to know about the cluster, behind one trait.
//!
//! [`crate::webhook::cache::KubeCluster`] answers from kube-runtime watch caches (with one live GET
//! on a cache miss, and a SubjectAccessReview for ownership); [`MemoryCluster`] answers from fixed
//! in-memory objects, for handler tests and benchmarks.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use k8s_openapi::api::authentication::v1::UserInfo;
use kube::runtime::watcher;

use super::keyindex::KeyIndex;
use crate::Result;
use crate::resources::gateway::HTTPRoute;
use crate::resources::{APIKey, APIProduct};

/// How fresh a lookup must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// From the watch cache, falling back to a live read on a miss.
    Cached,
    /// Live from the API server, to confirm a denial a stale cache entry would cause.
    Live,
}

/// Lookups behind the admission decisions.
pub trait Cluster: Send + Sync + 'static {
    /// The APIProduct `namespace/name`, if it exists.
    fn product(
        &self,
        namespace: &str,
        name: &str,
        read: Read,
    ) -> impl Future<Output = Result<Option<Arc<APIProduct>>>> + Send;

    /// The HTTPRoute `namespace/name`, if it exists.
    fn route(
        &self,
        namespace: &str,
        name: &str,
        read: Read,
    ) -> impl Future<Output = Result<Option<Arc<HTTPRoute>>>> + Send;

    /// How many live APIKeys `user` holds for the product `namespace/product`.
    fn live_keys(&self, user: &str, namespace: &str, product: &str) -> usize;

    /// Whether `user` may `approve` the APIProduct `namespace/product`, i.e. owns it or is an admin.
    fn may_approve(
        &self,
        user: &UserInfo,
        namespace: &str,
        product: &str,
    ) -> impl Future<Output = Result<bool>> + Send;
}

/// A [`Cluster`] made of fixed objects held in memory.
#[derive(Default)]
pub struct MemoryCluster {
    products: HashMap<(String, String), Arc<APIProduct>>,
    routes: HashMap<(String, String), Arc<HTTPRoute>>,
    keys: KeyIndex,
    /// (user, namespace, product) triples that may approve.
    approvers: HashSet<(String, String, String)>,
    /// Users who may approve every product.
    admins: HashSet<String>,
}

fn object_key<K: kube::Resource>(object: &K) -> (String, String) {
    (
        object.meta().namespace.clone().unwrap_or_default(),
        object.meta().name.clone().unwrap_or_default(),
    )
}

impl MemoryCluster {
    /// Adds an APIProduct (it must carry its namespace).
    pub fn with_product(mut self, product: APIProduct) -> Self {
        self.products
            .insert(object_key(&product), Arc::new(product));
        self
    }

    /// Adds an HTTPRoute (it must carry its namespace).
    pub fn with_route(mut self, route: HTTPRoute) -> Self {
        self.routes.insert(object_key(&route), Arc::new(route));
        self
    }

    /// Adds an existing APIKey, counted by the guardrail when live.
    pub fn with_key(self, key: APIKey) -> Self {
        self.keys.apply(&watcher::Event::Apply(key.into()));
        self
    }

    /// Lets `user` approve the product `namespace/product`.
    pub fn with_approver(mut self, user: &str, namespace: &str, product: &str) -> Self {
        self.approvers
            .insert((user.into(), namespace.into(), product.into()));
        self
    }

    /// Lets `user` approve every product.
    pub fn with_admin(mut self, user: &str) -> Self {
        self.admins.insert(user.into());
        self
    }
}

impl Cluster for MemoryCluster {
    async fn product(
        &self,
        namespace: &str,
        name: &str,
        _: Read,
    ) -> Result<Option<Arc<APIProduct>>> {
        Ok(self
            .products
            .get(&(namespace.to_string(), name.to_string()))
            .cloned())
    }

    async fn route(&self, namespace: &str, name: &str, _: Read) -> Result<Option<Arc<HTTPRoute>>> {
        Ok(self
            .routes
            .get(&(namespace.to_string(), name.to_string()))
            .cloned())
    }

    fn live_keys(&self, user: &str, namespace: &str, product: &str) -> usize {
        self.keys.live_keys(user, namespace, product)
    }

    async fn may_approve(&self, user: &UserInfo, namespace: &str, product: &str) -> Result<bool> {
        let name = user.username.clone().unwrap_or_default();
        Ok(self.admins.contains(&name)
            || self
                .approvers
                .contains(&(name, namespace.into(), product.into())))
    }
}
