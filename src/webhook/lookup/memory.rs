//! [`MemoryLookup`]: a [`Lookup`] made of fixed objects held in memory, for the webhook's handler
//! tests and benchmarks. Compiled only with the `testing` feature.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::watcher;

use super::{Lookup, Read};
use crate::Result;
use crate::resources::gateway::HTTPRoute;
use crate::resources::{APIKey, APIKeyPolicy, APIKeyRequest, APIProduct};
use crate::webhook::key_counts::{Claim, KeyCounts};

/// A [`Lookup`] made of fixed objects held in memory.
#[derive(Default)]
pub struct MemoryLookup {
    products: HashMap<(String, String), Arc<APIProduct>>,
    routes: HashMap<(String, String), Arc<HTTPRoute>>,
    requests: HashMap<(String, String), Arc<APIKeyRequest>>,
    policies: Vec<Arc<APIKeyPolicy>>,
    namespace_labels: HashMap<String, BTreeMap<String, String>>,
    keys: KeyCounts,
    /// (user, namespace, product) triples that may approve.
    approvers: HashSet<(String, String, String)>,
    /// Users who may approve every product.
    admins: HashSet<String>,
    /// (user, target) pairs: `user` may impersonate `target`.
    impersonators: HashSet<(String, String)>,
}

fn object_key<K: kube::Resource>(object: &K) -> (String, String) {
    (
        object.meta().namespace.clone().unwrap_or_default(),
        object.meta().name.clone().unwrap_or_default(),
    )
}

impl MemoryLookup {
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

    /// Adds an APIKeyRequest (it must carry its namespace).
    pub fn with_request(mut self, request: APIKeyRequest) -> Self {
        self.requests
            .insert(object_key(&request), Arc::new(request));
        self
    }

    /// Adds an APIKeyPolicy.
    pub fn with_policy(mut self, policy: APIKeyPolicy) -> Self {
        self.policies.push(Arc::new(policy));
        self
    }

    /// Gives the namespace `name` these labels.
    pub fn with_namespace_labels(mut self, name: &str, labels: &[(&str, &str)]) -> Self {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.namespace_labels.insert(name.into(), labels);
        self
    }

    /// Adds an existing APIKey, counted by the guardrail when it counts.
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

    /// Lets `user` impersonate the user `target`.
    pub fn with_impersonator(mut self, user: &str, target: &str) -> Self {
        self.impersonators.insert((user.into(), target.into()));
        self
    }

    /// Lets `user` approve every product.
    pub fn with_admin(mut self, user: &str) -> Self {
        self.admins.insert(user.into());
        self
    }
}

impl Lookup for MemoryLookup {
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

    fn products_on_route(&self, namespace: &str, route: &str) -> Vec<Arc<APIProduct>> {
        self.products
            .iter()
            .filter(|((ns, _), p)| ns == namespace && p.spec.target_ref.name == route)
            .map(|(_, p)| p.clone())
            .collect()
    }

    fn policies(&self) -> Vec<Arc<APIKeyPolicy>> {
        self.policies.clone()
    }

    fn namespace_labels(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.namespace_labels.get(name).cloned()
    }

    async fn key_request(&self, namespace: &str, name: &str) -> Result<Option<Arc<APIKeyRequest>>> {
        Ok(self
            .requests
            .get(&(namespace.to_string(), name.to_string()))
            .cloned())
    }

    fn admit_key(&self, claim: &Claim, now: Timestamp) -> std::result::Result<(), usize> {
        self.keys.admit(claim, now)
    }

    async fn may_approve(&self, user: &UserInfo, namespace: &str, product: &str) -> Result<bool> {
        let name = user.username.clone().unwrap_or_default();
        Ok(self.admins.contains(&name)
            || self
                .approvers
                .contains(&(name, namespace.into(), product.into())))
    }

    async fn may_impersonate(&self, user: &UserInfo, target: &str) -> Result<bool> {
        let name = user.username.clone().unwrap_or_default();
        Ok(self.impersonators.contains(&(name, target.into())))
    }
}
