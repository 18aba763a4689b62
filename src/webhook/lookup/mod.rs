//! What the admission rules need to know about the cluster, behind one trait: [`Lookup`].
//!
//! [`CachedLookup`] answers from the process's shared watch stores (with one live GET on a miss,
//! and a SubjectAccessReview for `approve` and `impersonate`), each live call charged to the
//! admission's caller and lane ([`rate`]); `MemoryLookup` (with the `testing` feature) answers
//! from fixed in-memory objects, for handler tests and benchmarks.

mod cached;
#[cfg(feature = "testing")]
mod memory;
pub mod rate;

pub use cached::{CachedLookup, Feeds};
#[cfg(feature = "testing")]
pub use memory::MemoryLookup;
pub use rate::{BudgetLimits, LiveBudget, Rate};

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::jiff::Timestamp;

use crate::Result;
use crate::resources::gateway::HTTPRoute;
use crate::resources::{APIKeyPolicy, APIKeyRequest, APIProduct};
use crate::webhook::key_counts::Claim;

/// How fresh a lookup must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// From the watch cache, falling back to a live read on a miss.
    Cached,
    /// Live from the API server, to confirm a denial a stale cache entry would cause.
    Live,
}

/// Lookups behind the admission rules.
pub trait Lookup: Send + Sync + 'static {
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

    /// The APIProducts in `namespace` whose `targetRef` names the HTTPRoute `route`, from the
    /// watch cache (no live call). A lookup that holds no products (a test double answering
    /// single reads) finds none.
    fn products_on_route(&self, namespace: &str, route: &str) -> Vec<Arc<APIProduct>> {
        let _ = (namespace, route);
        Vec::new()
    }

    /// The APIKeyPolicies, from the watch cache (no live call). A lookup that holds no policies
    /// (a test double answering single reads) has none.
    fn policies(&self) -> Vec<Arc<APIKeyPolicy>> {
        Vec::new()
    }

    /// The labels of the namespace `name`, from the watch cache (no live call); `None` when the
    /// namespace is unknown.
    fn namespace_labels(&self, name: &str) -> Option<BTreeMap<String, String>> {
        let _ = name;
        None
    }

    /// The APIKeyRequest `namespace/name`, if it exists, read live (an approval is rare, and
    /// must not be refused for a request created a moment ago).
    fn key_request(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<Arc<APIKeyRequest>>>> + Send;

    /// Admits one more key for `claim.holder` if fewer than `claim.limit` others count, and
    /// promises it the place (see [`crate::webhook::key_counts::KeyCounts::admit`]); otherwise
    /// returns how many count.
    fn admit_key(&self, claim: &Claim, now: Timestamp) -> std::result::Result<(), usize>;

    /// Whether `user` may `approve` the APIProduct `namespace/product`, i.e. owns it or is an admin.
    fn may_approve(
        &self,
        user: &UserInfo,
        namespace: &str,
        product: &str,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Whether `user` may `impersonate` the user named `target` (core group, resource `users`):
    /// the Kubernetes grant a trusted front end holds to act for its users.
    fn may_impersonate(
        &self,
        user: &UserInfo,
        target: &str,
    ) -> impl Future<Output = Result<bool>> + Send;
}
