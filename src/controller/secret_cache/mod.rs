//! A compact in-memory view of the Secrets devportal wrote, fed by their label-selected watch.
//!
//! A reflector store would keep every Secret whole (two per key, with label and annotation maps and
//! the key value itself); the reconciles only ask "does this Secret exist, which role has it, whose
//! is it, does it carry what it should, and do a key's two Secrets hold the same thing". So each
//! Secret is kept as its `namespace/name`, its role, the key its annotation names, a digest of the
//! uid its ownership mark names, a digest of its labels and annotations and a keyed digest of its
//! data — never the value — with an index from each key to its Secrets: a few hundred bytes per key.
//! Enforcement Secrets are also indexed by that keyed digest, so the controller can tell whether a
//! value a consumer brings is already some other key's (see `apikey::own_value`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use tokio::sync::watch;

use crate::resources::cached_key::CachedKey;
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
    /// Whether it carries a MAC of its value ([`secrets::value_mac`]; consumer Secrets).
    vouched: bool,
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
            vouched: secrets::value_mac(meta).is_some(),
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

    /// `namespace/name` of the APIKey its annotation names (a hint: ownership is the uid mark).
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// Whether the Secret carries a MAC of its value (consumer Secrets written by this release;
    /// whether the MAC is right is checked on the live Secret).
    pub fn vouched(&self) -> bool {
        self.vouched
    }

    /// Whether the Secret has no ownership mark at all (the old layout's enforcement Secrets).
    pub fn unmarked(&self) -> bool {
        self.owner_uid.is_none()
    }
}

/// The APIKey a Secret of devportal's belongs to, by its annotation (a hint: ownership is the
/// uid mark, which the reconcile checks).
pub fn key_of(secret: &Secret) -> Option<ObjectRef<CachedKey>> {
    key_ref(secrets::owner_reference(&secret.metadata)?)
}

/// The APIKey `namespace/name`.
fn key_ref(owner: &str) -> Option<ObjectRef<CachedKey>> {
    let (namespace, name) = owner.split_once('/')?;
    Some(ObjectRef::new(name).within(namespace))
}

/// One complete view: every Secret by `namespace/name`, and each key's Secrets.
#[derive(Default)]
struct View {
    /// (Every `namespace/name` is allocated once and shared by the three maps.)
    secrets: HashMap<Arc<str>, CachedSecret>,
    by_key: HashMap<Arc<str>, Vec<Arc<str>>>,
    /// Enforcement Secrets by [`CachedSecret::content`].
    by_content: HashMap<u64, Vec<Arc<str>>>,
}

impl View {
    /// The owners of the Secrets that differ between `before` and this view (added, removed or
    /// changed), each once.
    fn owners_changed_from(&self, before: &View) -> Vec<Arc<str>> {
        let added_or_changed = self
            .secrets
            .iter()
            .filter(|(id, entry)| before.secrets.get(*id) != Some(*entry));
        let removed = before
            .secrets
            .iter()
            .filter(|(id, _)| !self.secrets.contains_key(*id));
        let mut owners: Vec<Arc<str>> = added_or_changed
            .chain(removed)
            .filter_map(|(_, entry)| entry.owner.clone())
            .collect();
        owners.sort();
        owners.dedup();
        owners
    }

    fn insert(&mut self, secret: &Secret) {
        let id = id_of(&secret.metadata);
        let Some(mut entry) = CachedSecret::of(secret) else {
            // Labelled as managed but not one of ours in shape: not cached, so a reconcile that
            // needs it reads it live.
            self.remove(&id);
            return;
        };
        // The owner's name once for all its Secrets.
        if let Some((shared, _)) = entry
            .owner
            .as_deref()
            .and_then(|owner| self.by_key.get_key_value(owner))
        {
            entry.owner = Some(shared.clone());
        }
        let owner = entry.owner.clone();
        if entry.role == Role::Enforcement {
            self.by_content
                .entry(entry.content)
                .or_default()
                .push(id.clone());
        }
        let previous = self.secrets.insert(id.clone(), entry);
        if let Some(p) = previous.as_ref().filter(|p| p.role == Role::Enforcement) {
            self.unlink_content(p.content, &id);
        }
        let previous_owner = previous.and_then(|p| p.owner);
        if previous_owner != owner {
            if let Some(old) = previous_owner {
                self.unlink(&old, &id);
            }
            if let Some(owner) = owner {
                let list = self
                    .by_key
                    .entry(owner)
                    .or_insert_with(|| Vec::with_capacity(2));
                list.push(id);
            }
        }
    }

    fn remove(&mut self, id: &str) {
        let Some(entry) = self.secrets.remove(id) else {
            return;
        };
        if entry.role == Role::Enforcement {
            self.unlink_content(entry.content, id);
        }
        if let Some(owner) = entry.owner {
            self.unlink(&owner, id);
        }
    }

    /// Drops one link of `id` from `content` (an unchanged Secret is linked twice for a moment).
    fn unlink_content(&mut self, content: u64, id: &str) {
        if let Some(list) = self.by_content.get_mut(&content) {
            if let Some(at) = list.iter().position(|s| &**s == id) {
                list.swap_remove(at);
            }
            if list.is_empty() {
                self.by_content.remove(&content);
            }
        }
    }

    fn owned(&self, id: &str) -> Option<OwnedSecret> {
        let entry = self.secrets.get(id)?;
        let (namespace, name) = id.split_once('/')?;
        Some(OwnedSecret {
            namespace: namespace.to_string(),
            name: name.to_string(),
            role: entry.role,
            cached: entry.clone(),
        })
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
    /// Applies one event of the Secrets' watch, as a reflector would: a (re-)list is collected
    /// into a view of its own and replaces the live one when complete. Returns, when a list
    /// completes, the keys whose Secrets it changed, added or removed against the view it
    /// replaced; nothing for other events.
    pub fn apply(&self, event: &watcher::Event<Secret>) -> Vec<ObjectRef<CachedKey>> {
        let mut state = self.state.write().expect("secret cache lock");
        let mut changed = Vec::new();
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
                    changed = view
                        .owners_changed_from(&state.live)
                        .iter()
                        .filter_map(|owner| key_ref(owner))
                        .collect();
                    state.live = view;
                }
                drop(state);
                self.synced.send_replace(true);
            }
        }
        changed
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
        ids.iter().filter_map(|id| state.live.owned(id)).collect()
    }

    /// The enforcement Secrets in `namespace` (the enforcement namespace: anywhere else, anyone
    /// may have copied the marks) holding exactly `content` ([`secrets::content_digest`]).
    pub fn enforced_with(&self, namespace: &str, content: u64) -> Vec<OwnedSecret> {
        let state = self.state.read().expect("secret cache lock");
        let ids = state.live.by_content.get(&content);
        ids.into_iter()
            .flatten()
            .filter_map(|id| state.live.owned(id))
            .filter(|s| s.namespace == namespace)
            .collect()
    }

    /// Names of the marked enforcement Secrets in `namespace` (the enforcement namespace, never
    /// anywhere else) whose uid mark `is_live` does not know (it is given
    /// [`crate::digest::digest`] of the uid): the candidates for garbage collection, to be
    /// confirmed on the live objects.
    pub fn enforcement_of_unknown_uids(
        &self,
        namespace: &str,
        is_live: impl Fn(u64) -> bool,
    ) -> Vec<String> {
        let state = self.state.read().expect("secret cache lock");
        state
            .live
            .by_content
            .values()
            .flatten()
            .filter(|id| id.split_once('/').is_some_and(|(ns, _)| ns == namespace))
            .filter(|id| {
                state
                    .live
                    .secrets
                    .get(*id)
                    .and_then(|e| e.owner_uid)
                    .is_some_and(|uid| !is_live(uid))
            })
            .filter_map(|id| id.split_once('/'))
            .map(|(_, name)| name.to_string())
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

fn id_of(meta: &ObjectMeta) -> Arc<str> {
    join(
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
    .into()
}

#[cfg(test)]
mod tests;
