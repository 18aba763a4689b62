//! [`PolicyView`]: the APIKeyPolicies and the namespaces' labels, as the controller reads them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::jiff::Timestamp;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::policy::{self, Defaults, Effective, KeyFacts};
use crate::resources::{APIKey, APIKeyPolicy, APIProduct};

/// The policies and the namespaces' labels, from the shared watch caches.
#[derive(Clone)]
pub struct PolicyView {
    /// The APIKeyPolicies.
    pub policies: Store<APIKeyPolicy>,
    /// Every namespace's metadata.
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
}

impl PolicyView {
    /// The labels of namespace `name`, when the cache has it.
    pub fn namespace_labels(&self, name: &str) -> Option<BTreeMap<String, String>> {
        let namespace = self.namespaces.get(&ObjectRef::new(name))?;
        Some(namespace.metadata.labels.clone().unwrap_or_default())
    }

    /// The limits in force for `key` (for `product`): `defaults` tightened by every matching
    /// `Deny` policy.
    pub fn effective(
        &self,
        key: &APIKey,
        product: Option<&APIProduct>,
        defaults: &Defaults,
    ) -> Effective {
        let labels = self.namespace_labels(key.metadata.namespace.as_deref().unwrap_or_default());
        let since = created(key);
        let facts = KeyFacts::of(key, product, labels.as_ref(), since);
        let policies = self.policies.state();
        let matched = policy::matching(policies.iter().map(|p| &**p), &facts);
        policy::effective(&matched, defaults)
    }
}

/// When `key` was created (now, for one not stored yet).
pub fn created(key: &APIKey) -> Timestamp {
    key.metadata
        .creation_timestamp
        .as_ref()
        .map_or_else(Timestamp::now, |t| t.0)
}
