//! A compact in-memory view of the Secrets devportal wrote, fed by their label-selected watch.
//!
//! A reflector store would keep every Secret's full metadata (two Secrets per key, with label and
//! annotation maps); the reconciles only ask "does this Secret exist, which role has it, does it
//! carry what it should, and which Secrets belong to this key". So each Secret is kept as its
//! `namespace/name`, its role, its owning key and a digest of its labels and annotations,
//! with an index from each key to its Secrets: a few hundred bytes per key instead of kilobytes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PartialObjectMeta};
use kube::runtime::watcher;
use tokio::sync::watch;

use crate::secrets::{self, Role};

/// What the cache knows about one Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedSecret {
    /// Enforcement or consumer.
    pub role: Role,
    /// `namespace/name` of the APIKey it belongs to, from its annotation.
    owner: Option<Arc<str>>,
    /// [`secrets::metadata_digest`] of its labels and annotations.
    digest: u64,
}

impl CachedSecret {
    fn of(meta: &ObjectMeta) -> Option<Self> {
        Some(Self {
            role: secrets::role_of(meta)?,
            owner: secrets::owner_reference(meta).map(Arc::from),
            digest: secrets::metadata_digest(meta),
        })
    }

    /// Whether the Secret carried exactly the labels and annotations of `desired`.
    pub fn matches(&self, desired: &ObjectMeta) -> bool {
        self.digest == secrets::metadata_digest(desired)
    }
}

/// One complete view: every Secret by `namespace/name`, and each key's Secrets.
#[derive(Default)]
struct View {
    secrets: HashMap<Box<str>, CachedSecret>,
    by_key: HashMap<Arc<str>, Vec<Box<str>>>,
}

impl View {
    fn insert(&mut self, meta: &ObjectMeta) {
        let id = id_of(meta);
        let Some(entry) = CachedSecret::of(meta) else {
            // Labelled as managed but not one of ours in shape: not cached, so a reconcile that
            // needs it reads it live.
            self.remove(&id);
            return;
        };
        let owner = entry.owner.clone();
        let previous = self.secrets.insert(id.clone(), entry);
        let previous_owner = previous.and_then(|p| p.owner);
        if previous_owner != owner {
            if let Some(old) = previous_owner {
                self.unlink(&old, &id);
            }
            if let Some(owner) = owner {
                let owner = self
                    .by_key
                    .get_key_value(&*owner)
                    .map(|(k, _)| k.clone())
                    .unwrap_or(owner);
                let list = self
                    .by_key
                    .entry(owner)
                    .or_insert_with(|| Vec::with_capacity(2));
                list.push(id);
            }
        }
    }

    fn remove(&mut self, id: &str) {
        if let Some(owner) = self.secrets.remove(id).and_then(|e| e.owner) {
            self.unlink(&owner, id);
        }
    }

    fn unlink(&mut self, owner: &str, id: &str) {
        if let Some(list) = self.by_key.get_mut(owner) {
            list.retain(|s| &**s != id);
            if list.is_empty() {
                self.by_key.remove(owner);
            }
        }
    }
}

#[derive(Default)]
struct State {
    live: View,
    /// The view being rebuilt while the watch re-lists; it replaces `live` when the list is done.
    relist: Option<View>,
}

/// The controller's cache of devportal's Secrets.
pub struct SecretCache {
    state: RwLock<State>,
    synced: watch::Sender<bool>,
}

impl Default for SecretCache {
    fn default() -> Self {
        Self {
            state: RwLock::default(),
            synced: watch::channel(false).0,
        }
    }
}

/// A Secret a key owns, as the cache knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedSecret {
    /// Namespace of the Secret.
    pub namespace: String,
    /// Name of the Secret.
    pub name: String,
    /// Enforcement or consumer.
    pub role: Role,
}

impl SecretCache {
    /// Applies one event of the Secrets' watch, as a reflector would.
    pub fn apply(&self, event: &watcher::Event<PartialObjectMeta<Secret>>) {
        let mut state = self.state.write().expect("secret cache lock");
        match event {
            watcher::Event::Apply(secret) => state.live.insert(&secret.metadata),
            watcher::Event::Delete(secret) => state.live.remove(&id_of(&secret.metadata)),
            watcher::Event::Init => state.relist = Some(View::default()),
            watcher::Event::InitApply(secret) => state
                .relist
                .get_or_insert_with(View::default)
                .insert(&secret.metadata),
            watcher::Event::InitDone => {
                if let Some(view) = state.relist.take() {
                    state.live = view;
                }
                drop(state);
                self.synced.send_replace(true);
            }
        }
    }

    /// Waits until the first complete list has arrived.
    pub async fn wait_synced(&self) {
        let mut synced = self.synced.subscribe();
        let _ = synced.wait_for(|ready| *ready).await;
    }

    /// The Secret `namespace/name`, if the cache has it.
    pub fn get(&self, namespace: &str, name: &str) -> Option<CachedSecret> {
        let state = self.state.read().expect("secret cache lock");
        state.live.secrets.get(&*join(namespace, name)).cloned()
    }

    /// The Secrets the cache holds for the key `namespace/name`.
    pub fn owned_by(&self, namespace: &str, name: &str) -> Vec<OwnedSecret> {
        let state = self.state.read().expect("secret cache lock");
        let Some(ids) = state.live.by_key.get(&*join(namespace, name)) else {
            return Vec::new();
        };
        ids.iter()
            .filter_map(|id| {
                let entry = state.live.secrets.get(id)?;
                let (namespace, name) = id.split_once('/')?;
                Some(OwnedSecret {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    role: entry.role,
                })
            })
            .collect()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.state
            .read()
            .expect("secret cache lock")
            .live
            .secrets
            .len()
    }
}

fn join(namespace: &str, name: &str) -> Box<str> {
    format!("{namespace}/{name}").into_boxed_str()
}

fn id_of(meta: &ObjectMeta) -> Box<str> {
    join(
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::ApiKeyValue;
    use crate::resources::{APIKey, APIKeySpec};
    use crate::secrets::Enforcement;

    fn key(name: &str) -> APIKey {
        let mut key = APIKey::new(name, APIKeySpec::new("toys", "gold"));
        key.metadata.namespace = Some("team".into());
        key
    }

    fn target(namespace: &str, tier: &str) -> Enforcement {
        Enforcement {
            namespace: namespace.into(),
            selector_labels: [("app".to_string(), "toys".to_string())].into(),
            tier: tier.into(),
            user_id: "consumer".into(),
            expires_at: None,
        }
    }

    fn meta(secret: Secret) -> PartialObjectMeta<Secret> {
        PartialObjectMeta {
            types: None,
            metadata: secret.metadata,
            _phantom: Default::default(),
        }
    }

    fn enforcement(key: &APIKey, namespace: &str, tier: &str) -> PartialObjectMeta<Secret> {
        let value = ApiKeyValue::from_secret("v".into());
        meta(secrets::enforcement_secret(
            key,
            &target(namespace, tier),
            &value,
        ))
    }

    fn consumer(key: &APIKey) -> PartialObjectMeta<Secret> {
        meta(secrets::consumer_secret(
            key,
            &ApiKeyValue::from_secret("v".into()),
        ))
    }

    #[test]
    fn indexes_secrets_by_key_and_compares_by_fingerprint() {
        let cache = SecretCache::default();
        let k = key("k");
        let gold = enforcement(&k, "gw", "gold");
        cache.apply(&watcher::Event::Apply(gold.clone()));
        cache.apply(&watcher::Event::Apply(consumer(&k)));
        cache.apply(&watcher::Event::Apply(consumer(&key("other"))));
        let owned = cache.owned_by("team", "k");
        assert_eq!(owned.len(), 2);
        assert!(
            owned
                .iter()
                .any(|s| s.role == Role::Enforcement && s.namespace == "gw")
        );
        let name = gold.metadata.name.clone().unwrap();
        let name = name.as_str();
        let cached = cache.get("gw", name).expect("cached");
        assert!(cached.matches(&gold.metadata));
        assert!(!cached.matches(&enforcement(&k, "gw", "silver").metadata));

        cache.apply(&watcher::Event::Apply(enforcement(&k, "gw", "silver")));
        assert!(!cache.get("gw", name).unwrap().matches(&gold.metadata));
        assert_eq!(
            cache.owned_by("team", "k").len(),
            2,
            "an update is not a second Secret"
        );

        cache.apply(&watcher::Event::Delete(gold));
        assert_eq!(cache.owned_by("team", "k").len(), 1);
        assert!(cache.get("gw", name).is_none());
        cache.apply(&watcher::Event::Delete(consumer(&k)));
        assert!(cache.owned_by("team", "k").is_empty());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_relist_replaces_the_view_only_when_complete() {
        let cache = SecretCache::default();
        let (a, b) = (key("a"), key("b"));
        cache.apply(&watcher::Event::Init);
        cache.apply(&watcher::Event::InitApply(consumer(&a)));
        cache.apply(&watcher::Event::InitDone);
        assert_eq!(cache.len(), 1);
        // A re-list after a lost watch: `a`'s Secret went away meanwhile, `b`'s appeared.
        cache.apply(&watcher::Event::Init);
        cache.apply(&watcher::Event::InitApply(consumer(&b)));
        assert_eq!(cache.owned_by("team", "a").len(), 1, "old view until done");
        cache.apply(&watcher::Event::InitDone);
        assert!(cache.owned_by("team", "a").is_empty());
        assert_eq!(cache.owned_by("team", "b").len(), 1);
    }

    #[test]
    fn secrets_without_a_role_are_not_cached() {
        let cache = SecretCache::default();
        let mut odd = consumer(&key("k"));
        odd.metadata.labels = None;
        cache.apply(&watcher::Event::Apply(odd));
        assert_eq!(cache.len(), 0);
        assert!(cache.owned_by("team", "k").is_empty());
    }
}
