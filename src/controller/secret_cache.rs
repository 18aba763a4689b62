//! A compact in-memory view of the Secrets devportal wrote, fed by their label-selected watch.
//!
//! A reflector store would keep every Secret whole (two per key, with label and annotation maps and
//! the key value itself); the reconciles only ask "does this Secret exist, which role has it, whose
//! is it, does it carry what it should, and do a key's two Secrets hold the same thing". So each
//! Secret is kept as its `namespace/name`, its role, the key its annotation names, a digest of the
//! uid its ownership mark names, a digest of its labels and annotations and a keyed digest of its
//! data — never the value — with an index from each key to its Secrets: a few hundred bytes per key.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
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
    /// Digest of the uid its ownership mark names ([`secrets::owner_uid`]).
    owner_uid: Option<u64>,
    /// [`secrets::metadata_digest`] of its labels and annotations.
    digest: u64,
    /// [`secrets::content_digest`] of its type and data.
    content: u64,
}

impl CachedSecret {
    fn of(secret: &Secret) -> Option<Self> {
        let meta = &secret.metadata;
        Some(Self {
            role: secrets::role_of(meta)?,
            owner: secrets::owner_reference(meta).map(Arc::from),
            owner_uid: secrets::owner_uid(meta).map(crate::digest::digest),
            digest: secrets::metadata_digest(meta),
            content: secrets::content_digest(secret),
        })
    }

    /// Whether the Secret carried exactly the labels and annotations of `desired`.
    pub fn matches(&self, desired: &ObjectMeta) -> bool {
        self.digest == secrets::metadata_digest(desired)
    }

    /// Whether two Secrets held the same type and data.
    pub fn same_content(&self, other: &CachedSecret) -> bool {
        self.content == other.content
    }

    /// Whether the Secret's ownership mark names the APIKey with `uid`.
    pub fn marked_for(&self, uid: &str) -> bool {
        self.owner_uid == Some(crate::digest::digest(uid))
    }

    /// Whether the Secret has no ownership mark at all (the old layout's enforcement Secrets).
    pub fn unmarked(&self) -> bool {
        self.owner_uid.is_none()
    }
}

/// One complete view: every Secret by `namespace/name`, and each key's Secrets.
#[derive(Default)]
struct View {
    secrets: HashMap<Box<str>, CachedSecret>,
    by_key: HashMap<Arc<str>, Vec<Box<str>>>,
}

impl View {
    fn insert(&mut self, secret: &Secret) {
        let id = id_of(&secret.metadata);
        let Some(entry) = CachedSecret::of(secret) else {
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

/// A Secret whose annotation names a key, as the cache knows it. Whether it really is the key's
/// is for the caller to tell from [`CachedSecret::marked_for`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedSecret {
    /// Namespace of the Secret.
    pub namespace: String,
    /// Name of the Secret.
    pub name: String,
    /// Enforcement or consumer.
    pub role: Role,
    /// What the cache knows of it.
    pub cached: CachedSecret,
}

impl SecretCache {
    /// Applies one event of the Secrets' watch, as a reflector would.
    pub fn apply(&self, event: &watcher::Event<Secret>) {
        let mut state = self.state.write().expect("secret cache lock");
        match event {
            watcher::Event::Apply(secret) => state.live.insert(secret),
            watcher::Event::Delete(secret) => state.live.remove(&id_of(&secret.metadata)),
            watcher::Event::Init => state.relist = Some(View::default()),
            watcher::Event::InitApply(secret) => state
                .relist
                .get_or_insert_with(View::default)
                .insert(secret),
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
    #[cfg(test)]
    pub fn get(&self, namespace: &str, name: &str) -> Option<CachedSecret> {
        let state = self.state.read().expect("secret cache lock");
        state.live.secrets.get(&*join(namespace, name)).cloned()
    }

    /// The Secrets the cache holds whose annotation names the key `namespace/name`.
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
                    cached: entry.clone(),
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
        key.metadata.uid = Some(format!("uid-of-{name}"));
        key
    }

    fn enforcement(key: &APIKey, value: &str) -> Secret {
        let uid = key.metadata.uid.as_deref().unwrap();
        let target = Enforcement {
            namespace: "kuadrant-system".into(),
            labels: secrets::enforcement_labels(uid, &[]).unwrap(),
            tier: "gold".into(),
            user_id: "consumer".into(),
            expires_at: None,
        };
        secrets::enforcement_secret(key, &target, &ApiKeyValue::from_secret(value.into()))
    }

    fn consumer(key: &APIKey, value: &str) -> Secret {
        secrets::consumer_secret(key, &ApiKeyValue::from_secret(value.into()))
    }

    #[test]
    fn indexes_secrets_by_key_and_compares_by_digests() {
        let cache = SecretCache::default();
        let k = key("k");
        let enforced = enforcement(&k, "v");
        cache.apply(&watcher::Event::Apply(enforced.clone()));
        cache.apply(&watcher::Event::Apply(consumer(&k, "v")));
        cache.apply(&watcher::Event::Apply(consumer(&key("other"), "w")));
        let owned = cache.owned_by("team", "k");
        assert_eq!(owned.len(), 2);
        assert!(owned.iter().all(|s| s.cached.marked_for("uid-of-k")));
        assert!(!owned[0].cached.marked_for("uid-of-other"));
        let name = enforced.metadata.name.clone().unwrap();
        let cached = cache.get("kuadrant-system", &name).expect("cached");
        assert!(cached.matches(&enforced.metadata));
        let copy = cache
            .get("team", &secrets::consumer_secret_name(&k))
            .unwrap();
        assert!(cached.same_content(&copy), "both hold the same key");

        // Drift at the same name: a label added, then the value changed.
        let mut relabelled = enforced.clone();
        relabelled
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("x".into(), "y".into());
        cache.apply(&watcher::Event::Apply(relabelled));
        let drifted = cache.get("kuadrant-system", &name).unwrap();
        assert!(!drifted.matches(&enforced.metadata));
        assert_eq!(
            cache.owned_by("team", "k").len(),
            2,
            "an update is not a second Secret"
        );
        cache.apply(&watcher::Event::Apply(enforcement(&k, "tampered")));
        let tampered = cache.get("kuadrant-system", &name).unwrap();
        assert!(tampered.matches(&enforced.metadata));
        assert!(!tampered.same_content(&copy));

        cache.apply(&watcher::Event::Delete(enforced));
        assert_eq!(cache.owned_by("team", "k").len(), 1);
        assert!(cache.get("kuadrant-system", &name).is_none());
        cache.apply(&watcher::Event::Delete(consumer(&k, "v")));
        assert!(cache.owned_by("team", "k").is_empty());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_relist_replaces_the_view_only_when_complete() {
        let cache = SecretCache::default();
        let (a, b) = (key("a"), key("b"));
        cache.apply(&watcher::Event::Init);
        cache.apply(&watcher::Event::InitApply(consumer(&a, "v")));
        cache.apply(&watcher::Event::InitDone);
        assert_eq!(cache.len(), 1);
        // A re-list after a lost watch: `a`'s Secret went away meanwhile, `b`'s appeared.
        cache.apply(&watcher::Event::Init);
        cache.apply(&watcher::Event::InitApply(consumer(&b, "v")));
        assert_eq!(cache.owned_by("team", "a").len(), 1, "old view until done");
        cache.apply(&watcher::Event::InitDone);
        assert!(cache.owned_by("team", "a").is_empty());
        assert_eq!(cache.owned_by("team", "b").len(), 1);
    }

    #[test]
    fn secrets_without_a_role_are_not_cached_and_unmarked_ones_are_told_apart() {
        let cache = SecretCache::default();
        let mut odd = consumer(&key("k"), "v");
        odd.metadata.labels = None;
        cache.apply(&watcher::Event::Apply(odd));
        assert_eq!(cache.len(), 0);
        assert!(cache.owned_by("team", "k").is_empty());
        let mut unowned = consumer(&key("k"), "v");
        unowned.metadata.owner_references = None;
        cache.apply(&watcher::Event::Apply(unowned));
        let entry = &cache.owned_by("team", "k")[0].cached;
        assert!(entry.unmarked() && !entry.marked_for("uid-of-k"));
    }
}
