//! A small in-memory index from "things that change" to the objects that must be reconciled
//! when they do, so a watch event reaches exactly the affected objects.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, ObjectRefExtra};

use crate::digest::digest;
use crate::resources::cached_key::{CachedKey, status_digest};
use crate::resources::{APIKey, APIKeyStatus, APIProduct};

/// Maps keys (a route, a product, ...) to the objects of kind `V` that depend on them.
pub struct RefIndex<K, V: Resource<DynamicType = ()>> {
    inner: Mutex<Maps<K, V>>,
}

struct Maps<K, V: Resource<DynamicType = ()>> {
    forward: HashMap<K, HashSet<ObjectRef<V>>>,
    /// An object's keys: mostly one, so a list (a set would allocate room for several).
    backward: HashMap<ObjectRef<V>, Vec<K>>,
}

impl<K, V: Resource<DynamicType = ()>> Default for RefIndex<K, V> {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Maps {
                forward: HashMap::new(),
                backward: HashMap::new(),
            }),
        }
    }
}

impl<K: Clone + Eq + Hash, V: Resource<DynamicType = ()>> RefIndex<K, V> {
    /// Records that `object` depends on exactly `keys`, replacing what it depended on before.
    /// Only the object's namespace and name are kept (a reference's resourceVersion and uid are
    /// not part of its identity), and a key equal to one held already is stored as a clone of
    /// that one (for an `Arc` key, one allocation however many objects share it).
    pub fn set(&self, mut object: ObjectRef<V>, keys: impl IntoIterator<Item = K>) {
        object.extra = ObjectRefExtra::default();
        let mut maps = self.inner.lock().expect("index lock");
        maps.unlink(&object);
        for key in keys {
            maps.link(key, object.clone());
        }
    }

    /// How many objects depend on `key` (without copying them out).
    pub fn count<Q>(&self, key: &Q) -> usize
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let maps = self.inner.lock().expect("index lock");
        maps.forward.get(key).map_or(0, HashSet::len)
    }

    /// The keys `object` depends on.
    pub fn keys_of(&self, object: &ObjectRef<V>) -> Vec<K> {
        let mut object = object.clone();
        object.extra = ObjectRefExtra::default();
        let maps = self.inner.lock().expect("index lock");
        maps.backward.get(&object).cloned().unwrap_or_default()
    }

    /// The objects that depend on `key`.
    pub fn lookup<Q>(&self, key: &Q) -> Vec<ObjectRef<V>>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let maps = self.inner.lock().expect("index lock");
        maps.forward
            .get(key)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }
}

impl<K: Clone + Eq + Hash, V: Resource<DynamicType = ()>> Maps<K, V> {
    fn link(&mut self, key: K, object: ObjectRef<V>) {
        let key = self
            .forward
            .get_key_value(&key)
            .map_or(key, |(held, _)| held.clone());
        self.forward
            .entry(key.clone())
            .or_default()
            .insert(object.clone());
        let keys = self.backward.entry(object).or_default();
        if !keys.contains(&key) {
            keys.push(key);
        }
    }

    fn unlink(&mut self, object: &ObjectRef<V>) {
        for key in self.backward.remove(object).unwrap_or_default() {
            if let Some(set) = self.forward.get_mut(&key) {
                set.remove(object);
                if set.is_empty() {
                    self.forward.remove(&key);
                }
            }
        }
    }
}

/// Which keys use which product, so a product event reaches exactly its keys. Keys and products
/// are kept as `namespace/name` strings: an `ObjectRef` and a set per key cost ten times as much at
/// thousands of keys.
#[derive(Default)]
pub struct KeysByProduct {
    inner: Mutex<ProductKeys>,
}

#[derive(Default)]
struct ProductKeys {
    /// (Each name is allocated once and shared by both maps.)
    keys: HashMap<Arc<str>, HashSet<Arc<str>>>,
    product_of: HashMap<Arc<str>, Arc<str>>,
}

impl ProductKeys {
    fn unlink(&mut self, key: &str) {
        if let Some(product) = self.product_of.remove(key)
            && let Some(keys) = self.keys.get_mut(&product)
        {
            keys.remove(key);
            if keys.is_empty() {
                self.keys.remove(&product);
            }
        }
    }
}

impl KeysByProduct {
    /// Records that `key` uses `product`, replacing the product it used before.
    pub fn set(&self, key: &APIKey, product: &ObjectRef<APIProduct>) {
        let key = id(
            key.metadata.namespace.as_deref(),
            key.metadata.name.as_deref(),
        );
        let product = id(product.namespace.as_deref(), Some(&product.name));
        let mut maps = self.inner.lock().expect("index lock");
        if maps.product_of.get(&key) == Some(&product) {
            return;
        }
        maps.unlink(&key);
        let product = maps
            .keys
            .get_key_value(&product)
            .map_or(product, |(held, _)| held.clone());
        maps.keys
            .entry(product.clone())
            .or_default()
            .insert(key.clone());
        maps.product_of.insert(key, product);
    }

    /// Forgets `key`.
    pub fn remove(&self, key: &APIKey) {
        let key = id(
            key.metadata.namespace.as_deref(),
            key.metadata.name.as_deref(),
        );
        self.inner.lock().expect("index lock").unlink(&key);
    }

    /// The keys that use `product`.
    pub fn lookup(&self, product: &ObjectRef<APIProduct>) -> Vec<ObjectRef<CachedKey>> {
        let product = id(product.namespace.as_deref(), Some(&product.name));
        let maps = self.inner.lock().expect("index lock");
        maps.keys
            .get(&product)
            .into_iter()
            .flatten()
            .filter_map(|key| {
                let (namespace, name) = key.split_once('/')?;
                Some(ObjectRef::new(name).within(namespace))
            })
            .collect()
    }
}

fn id(namespace: Option<&str>, name: Option<&str>) -> Arc<str> {
    format!(
        "{}/{}",
        namespace.unwrap_or_default(),
        name.unwrap_or_default()
    )
    .into()
}

/// Which status the controller last wrote for each key, and from which version of the key, so a
/// reconcile that sees the same (stale) version again does not write the same status twice.
/// Kept as hashes (of the uid, the resourceVersion and the status): 24 bytes per key.
#[derive(Default)]
pub struct WrittenStatus {
    by_uid: Mutex<HashMap<u64, (u64, u64)>>,
}

impl WrittenStatus {
    /// Whether `status` (timestamps aside) was already written from this version of `key`.
    pub fn already(&self, key: &APIKey, status: &APIKeyStatus) -> bool {
        let (Some(uid), Some(version)) = (
            key.metadata.uid.as_ref(),
            key.metadata.resource_version.as_ref(),
        ) else {
            return false;
        };
        self.by_uid.lock().expect("written lock").get(&digest(uid))
            == Some(&(digest(version), digest_without_times(status)))
    }

    /// Records that `status` was written from this version of `key`.
    pub fn remember(&self, key: &APIKey, status: &APIKeyStatus) {
        if let (Some(uid), Some(version)) = (
            key.metadata.uid.as_ref(),
            key.metadata.resource_version.as_ref(),
        ) {
            self.by_uid
                .lock()
                .expect("written lock")
                .insert(digest(uid), (digest(version), digest_without_times(status)));
        }
    }

    /// Forgets a deleted key.
    pub fn forget(&self, key: &APIKey) {
        if let Some(uid) = &key.metadata.uid {
            self.by_uid
                .lock()
                .expect("written lock")
                .remove(&digest(uid));
        }
    }
}

/// A digest of a status without its condition timestamps.
fn digest_without_times(status: &APIKeyStatus) -> u64 {
    let mut status = status.clone();
    for condition in &mut status.conditions {
        condition.last_transition_time = Time(Timestamp::UNIX_EPOCH);
    }
    if let Some(rotation) = &mut status.rotation {
        rotation.rotated_at = Time(Timestamp::UNIX_EPOCH);
    }
    status_digest(&status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::APIProduct;

    #[test]
    fn set_replaces_what_an_object_depends_on() {
        let index = RefIndex::<&str, APIProduct>::default();
        let p = ObjectRef::<APIProduct>::new("p").within("ns");
        let q = ObjectRef::<APIProduct>::new("q").within("ns");
        index.set(p.clone(), ["route-a", "gw"]);
        index.set(q.clone(), ["gw"]);
        assert_eq!(index.lookup(&"route-a"), std::slice::from_ref(&p));
        assert_eq!(index.lookup(&"gw").len(), 2);
        assert_eq!(index.keys_of(&p), ["route-a", "gw"]);
        index.set(p.clone(), ["route-b"]);
        assert!(index.lookup(&"route-a").is_empty());
        assert_eq!(index.lookup(&"gw"), std::slice::from_ref(&q));
        index.set(p.clone(), []);
        assert!(index.lookup(&"route-b").is_empty());
        index.set(q.clone(), ["route-c"]);
        assert!(index.lookup(&"gw").is_empty());
        assert_eq!(index.lookup(&"route-c"), [q]);
    }

    #[test]
    fn keys_follow_their_product() {
        use crate::resources::APIKeySpec;
        let index = KeysByProduct::default();
        let mut key = APIKey::new("k", APIKeySpec::new("toys", "gold"));
        key.metadata.namespace = Some("team".into());
        let toys = ObjectRef::<APIProduct>::new("toys").within("apps");
        let games = ObjectRef::<APIProduct>::new("games").within("apps");
        index.set(&key, &toys);
        assert_eq!(index.lookup(&toys), [ObjectRef::new("k").within("team")]);
        index.set(&key, &games);
        assert!(index.lookup(&toys).is_empty(), "moved to another product");
        assert_eq!(index.lookup(&games).len(), 1);
        index.remove(&key);
        assert!(index.lookup(&games).is_empty());
    }

    #[test]
    fn a_status_is_written_once_per_object_version() {
        use crate::resources::{APIKeyPhase, APIKeySpec};
        let mut key = APIKey::new("k", APIKeySpec::new("p", "gold"));
        key.metadata.uid = Some("uid-1".into());
        key.metadata.resource_version = Some("10".into());
        let status = APIKeyStatus {
            phase: Some(APIKeyPhase::Approved),
            ..APIKeyStatus::default()
        };
        let written = WrittenStatus::default();
        assert!(!written.already(&key, &status));
        written.remember(&key, &status);
        assert!(
            written.already(&key, &status),
            "the same stale version again"
        );
        let other = APIKeyStatus {
            phase: Some(APIKeyPhase::Denied),
            ..APIKeyStatus::default()
        };
        assert!(
            !written.already(&key, &other),
            "a different status is written"
        );
        key.metadata.resource_version = Some("11".into());
        assert!(
            !written.already(&key, &status),
            "a newer version is compared afresh"
        );
        written.forget(&key);
        key.metadata.resource_version = Some("10".into());
        assert!(!written.already(&key, &status));
    }
}
