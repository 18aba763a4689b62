//! [`LiveKeyCounts`]: live APIKeys per requester and product, kept in step with the APIKey watch.
//!
//! The guardrail asks "how many live keys does this user hold for this product?" on every APIKey
//! CREATE. Scanning every cached key would make that cost grow with the cluster, so the counts keep
//! one counter per (requester, product) and update it from the watcher's events.

use std::collections::HashMap;
use std::sync::RwLock;

use kube::runtime::watcher;

use kube::Resource;

use crate::resources::APIKeyPhase;
use crate::resources::cached_key::CachedKey;

/// The (requester, product namespace, product name) a live key counts against.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Owner {
    user: String,
    product_namespace: String,
    product: String,
}

/// Namespace and name of an APIKey.
type KeyName = (String, String);

#[derive(Default)]
struct Inner {
    owners: HashMap<KeyName, Owner>,
    counts: HashMap<Owner, usize>,
    /// Keys seen during a watcher (re)list, swapped in at `InitDone`.
    relist: Option<HashMap<KeyName, Owner>>,
}

impl Inner {
    fn remove(&mut self, name: &KeyName) {
        if let Some(owner) = self.owners.remove(name)
            && let Some(count) = self.counts.get_mut(&owner)
        {
            *count -= 1;
            if *count == 0 {
                self.counts.remove(&owner);
            }
        }
    }

    fn insert(&mut self, name: KeyName, owner: Owner) {
        *self.counts.entry(owner.clone()).or_default() += 1;
        self.owners.insert(name, owner);
    }
}

/// Counts of live APIKeys by requester and product.
#[derive(Default)]
pub struct LiveKeyCounts {
    inner: RwLock<Inner>,
}

impl LiveKeyCounts {
    /// Applies one watcher event.
    pub fn apply(&self, event: &watcher::Event<CachedKey>) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        match event {
            watcher::Event::Apply(key) | watcher::Event::Delete(key) => {
                let Some(name) = key_name(key) else { return };
                inner.remove(&name);
                if matches!(event, watcher::Event::Apply(_))
                    && let Some(owner) = live_owner(key)
                {
                    inner.insert(name, owner);
                }
            }
            watcher::Event::Init => inner.relist = Some(HashMap::new()),
            watcher::Event::InitApply(key) => {
                if let (Some(name), Some(owner)) = (key_name(key), live_owner(key)) {
                    inner.relist.get_or_insert_default().insert(name, owner);
                }
            }
            watcher::Event::InitDone => {
                let owners = inner.relist.take().unwrap_or_default();
                let mut counts = HashMap::new();
                for owner in owners.values() {
                    *counts.entry(owner.clone()).or_default() += 1;
                }
                inner.owners = owners;
                inner.counts = counts;
            }
        }
    }

    /// How many live keys `user` holds for the product `namespace/product`.
    pub fn live_keys(&self, user: &str, namespace: &str, product: &str) -> usize {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let owner = Owner {
            user: user.into(),
            product_namespace: namespace.into(),
            product: product.into(),
        };
        inner.counts.get(&owner).copied().unwrap_or(0)
    }
}

fn key_name(key: &CachedKey) -> Option<KeyName> {
    let meta = key.meta();
    Some((meta.namespace.clone()?, meta.name.clone()?))
}

/// The owner a key counts against, if it is live: not being deleted, and Pending, Approved or
/// not yet given a phase.
fn live_owner(key: &CachedKey) -> Option<Owner> {
    if key.meta().deletion_timestamp.is_some() {
        return None;
    }
    let phase = key.phase();
    if !matches!(
        phase,
        None | Some(APIKeyPhase::Pending) | Some(APIKeyPhase::Approved)
    ) {
        return None;
    }
    Some(Owner {
        user: key.spec().requested_by.as_ref()?.user_id.clone(),
        product_namespace: key.product_namespace()?.into(),
        product: key.spec().api_product_ref.name.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{APIKey, APIKeySpec, APIKeyStatus, RequestedBy};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn key(name: &str, user: &str, product: &str, phase: Option<APIKeyPhase>) -> CachedKey {
        let mut spec = APIKeySpec::new(product, "gold");
        spec.api_product_ref.namespace = Some("apps".into());
        spec.requested_by = Some(RequestedBy {
            user_id: user.into(),
            email: None,
        });
        let mut key = APIKey::new(name, spec);
        key.metadata.namespace = Some("team".into());
        key.status = phase.map(|phase| APIKeyStatus {
            phase: Some(phase),
            ..APIKeyStatus::default()
        });
        key.into()
    }

    #[test]
    fn counts_only_live_keys_per_user_and_product() {
        let counts = LiveKeyCounts::default();
        counts.apply(&watcher::Event::Init);
        for k in [
            key("a", "alice", "toys", None),
            key("b", "alice", "toys", Some(APIKeyPhase::Approved)),
            key("c", "alice", "toys", Some(APIKeyPhase::Denied)),
            key("d", "alice", "books", Some(APIKeyPhase::Pending)),
            key("e", "bob", "toys", Some(APIKeyPhase::Pending)),
        ] {
            counts.apply(&watcher::Event::InitApply(k));
        }
        assert_eq!(
            counts.live_keys("alice", "apps", "toys"),
            0,
            "not before InitDone"
        );
        counts.apply(&watcher::Event::InitDone);
        assert_eq!(counts.live_keys("alice", "apps", "toys"), 2);
        assert_eq!(counts.live_keys("alice", "apps", "books"), 1);
        assert_eq!(counts.live_keys("bob", "apps", "toys"), 1);
        assert_eq!(counts.live_keys("alice", "other", "toys"), 0);

        // A key leaving the live phases, a deletion in progress and a delete all decrement.
        counts.apply(&watcher::Event::Apply(key(
            "a",
            "alice",
            "toys",
            Some(APIKeyPhase::Expired),
        )));
        assert_eq!(counts.live_keys("alice", "apps", "toys"), 1);
        let mut deleting = key("b", "alice", "toys", Some(APIKeyPhase::Approved));
        deleting.meta_mut().deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        counts.apply(&watcher::Event::Apply(deleting));
        assert_eq!(counts.live_keys("alice", "apps", "toys"), 0);
        counts.apply(&watcher::Event::Delete(key("e", "bob", "toys", None)));
        assert_eq!(counts.live_keys("bob", "apps", "toys"), 0);

        // Re-applying the same live key does not double count.
        counts.apply(&watcher::Event::Apply(key("f", "bob", "toys", None)));
        counts.apply(&watcher::Event::Apply(key("f", "bob", "toys", None)));
        assert_eq!(counts.live_keys("bob", "apps", "toys"), 1);
    }

    #[test]
    fn a_relist_replaces_the_previous_state() {
        let counts = LiveKeyCounts::default();
        counts.apply(&watcher::Event::Apply(key("a", "alice", "toys", None)));
        counts.apply(&watcher::Event::Init);
        counts.apply(&watcher::Event::InitApply(key("z", "zoe", "toys", None)));
        counts.apply(&watcher::Event::InitDone);
        assert_eq!(counts.live_keys("alice", "apps", "toys"), 0);
        assert_eq!(counts.live_keys("zoe", "apps", "toys"), 1);
    }
}
