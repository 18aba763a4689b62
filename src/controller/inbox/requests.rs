//! The controller's cache of APIKeyRequests: what the inbox reads of each, by namespace and name.
//!
//! A reflector store would keep each request as a whole [`CachedRequest`] — an `ObjectMeta` of
//! some 360 bytes, mostly empty fields, and an [`ObjectRef`] key with four strings — about a
//! kilobyte a request with its hash-table slot. This cache keeps the [`RequestSummary`] with the
//! uid and resourceVersion, keyed by namespace and name: half of that. It is kept from the
//! request watch's events as a reflector would keep it: a (re-)list is collected into a view of
//! its own that replaces the live one when complete, and the keys whose requests the list
//! changed are named then, once the cache holds it (as [`crate::controller::secret_cache`] does).

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, RwLock};

use kube::Resource;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use tokio::sync::watch;

use crate::resources::cached_key::CachedKey;
use crate::resources::cached_request::{CachedRequest, RequestSummary};

/// A request's namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct RequestName {
    /// The request's namespace.
    pub(crate) namespace: Box<str>,
    /// The request's name.
    pub(crate) name: Box<str>,
}

impl RequestName {
    fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// A request as the cache holds it: its uid and resourceVersion, and what the controller knows of
/// its content (which it reads as).
#[derive(Debug, PartialEq)]
pub(crate) struct StoredRequest {
    uid: Option<Box<str>>,
    resource_version: Option<Box<str>>,
    summary: RequestSummary,
}

impl StoredRequest {
    /// Its uid.
    pub(crate) fn uid(&self) -> Option<String> {
        self.uid.as_deref().map(str::to_string)
    }

    /// Its resourceVersion.
    pub(crate) fn resource_version(&self) -> Option<String> {
        self.resource_version.as_deref().map(str::to_string)
    }
}

impl Deref for StoredRequest {
    type Target = RequestSummary;

    fn deref(&self) -> &RequestSummary {
        &self.summary
    }
}

/// The APIKey a request mirrors, as its spec names it.
pub(crate) fn key_of(summary: &RequestSummary) -> ObjectRef<CachedKey> {
    let reference = summary.api_key_ref();
    ObjectRef::new(&reference.name).within(&reference.namespace)
}

/// The namespace and name of a request from the watch.
fn name_of(request: &CachedRequest) -> RequestName {
    RequestName::new(
        request.meta().namespace.as_deref().unwrap_or_default(),
        request.meta().name.as_deref().unwrap_or_default(),
    )
}

/// The name and stored form of a request from the watch.
fn stored(request: &CachedRequest) -> (RequestName, Arc<StoredRequest>) {
    let (metadata, summary) = request.clone().into_parts();
    let name = RequestName::new(
        metadata.namespace.as_deref().unwrap_or_default(),
        metadata.name.as_deref().unwrap_or_default(),
    );
    let request = StoredRequest {
        uid: metadata.uid.map(String::into_boxed_str),
        resource_version: metadata.resource_version.map(String::into_boxed_str),
        summary,
    };
    (name, Arc::new(request))
}

type View = HashMap<RequestName, Arc<StoredRequest>>;

#[derive(Default)]
struct State {
    live: View,
    /// The view being rebuilt while the watch re-lists; it replaces `live` when the list is done.
    relist: Option<View>,
}

/// The controller's cache of APIKeyRequests.
pub(crate) struct RequestCache {
    state: RwLock<State>,
    synced: watch::Sender<bool>,
}

impl Default for RequestCache {
    fn default() -> Self {
        Self {
            state: RwLock::default(),
            synced: watch::channel(false).0,
        }
    }
}

impl RequestCache {
    /// Applies one event of the requests' watch. Returns, when a (re-)list completes, the keys of
    /// the requests it changed, added or removed against the view it replaced; nothing for other
    /// events (their request is the trigger).
    pub(crate) fn apply(&self, event: &watcher::Event<CachedRequest>) -> Vec<ObjectRef<CachedKey>> {
        let mut state = self.state.write().expect("request cache lock");
        match event {
            watcher::Event::Apply(request) => {
                let (name, request) = stored(request);
                state.live.insert(name, request);
            }
            watcher::Event::Delete(request) => {
                state.live.remove(&name_of(request));
            }
            watcher::Event::Init => state.relist = Some(View::new()),
            watcher::Event::InitApply(request) => {
                let (name, request) = stored(request);
                state
                    .relist
                    .get_or_insert_with(View::new)
                    .insert(name, request);
            }
            watcher::Event::InitDone => {
                let mut changed = Vec::new();
                if let Some(view) = state.relist.take() {
                    let old = std::mem::replace(&mut state.live, view);
                    for (name, request) in &state.live {
                        if old.get(name) != Some(request) {
                            changed.push(key_of(request));
                        }
                    }
                    for (name, request) in &old {
                        if !state.live.contains_key(name) {
                            changed.push(key_of(request));
                        }
                    }
                }
                drop(state);
                self.synced.send_replace(true);
                return changed;
            }
        }
        Vec::new()
    }

    /// Waits until the first complete list has arrived.
    pub(crate) async fn wait_synced(&self) {
        let mut synced = self.synced.subscribe();
        let _ = synced.wait_for(|ready| *ready).await;
    }

    /// The request `namespace/name`, if the cache has it.
    pub(crate) fn get(&self, namespace: &str, name: &str) -> Option<Arc<StoredRequest>> {
        let state = self.state.read().expect("request cache lock");
        state.live.get(&RequestName::new(namespace, name)).cloned()
    }

    /// Every request the cache holds, with its name.
    pub(crate) fn all(&self) -> Vec<(RequestName, Arc<StoredRequest>)> {
        let state = self.state.read().expect("request cache lock");
        state
            .live
            .iter()
            .map(|(name, request)| (name.clone(), request.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(name: &str, key: &str, version: &str) -> CachedRequest {
        serde_json::from_value(json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1",
            "kind": "APIKeyRequest",
            "metadata": {"name": name, "namespace": "owners", "uid": format!("r-{name}"),
                         "resourceVersion": version,
                         "labels": {crate::names::APIKEY_UID_LABEL: format!("u-{key}")}},
            "spec": {"apiProductRef": {"name": "toys"}, "planTier": "gold",
                     "apiKeyRef": {"name": key, "namespace": "team"}}
        }))
        .unwrap()
    }

    fn names(keys: Vec<ObjectRef<CachedKey>>) -> Vec<String> {
        let mut names: Vec<_> = keys.into_iter().map(|key| key.name).collect();
        names.sort();
        names
    }

    #[test]
    fn keeps_what_the_inbox_reads_by_namespace_and_name() {
        let cache = RequestCache::default();
        assert!(
            cache
                .apply(&watcher::Event::Apply(request("a", "ka", "1")))
                .is_empty()
        );
        let stored = cache.get("owners", "a").unwrap();
        assert_eq!(stored.uid().as_deref(), Some("r-a"));
        assert_eq!(stored.resource_version().as_deref(), Some("1"));
        assert_eq!(stored.key_uid(), Some("u-ka"));
        assert_eq!(key_of(&stored).name, "ka");
        assert!(cache.get("other", "a").is_none());

        cache.apply(&watcher::Event::Delete(request("a", "ka", "2")));
        assert!(cache.get("owners", "a").is_none());
        assert!(cache.all().is_empty());
    }

    #[test]
    fn a_relist_replaces_the_view_when_complete_and_names_the_keys_it_changed() {
        let cache = RequestCache::default();
        for (name, key) in [("same", "k1"), ("changed", "k2"), ("gone", "k3")] {
            cache.apply(&watcher::Event::Apply(request(name, key, "1")));
        }
        cache.apply(&watcher::Event::Init);
        cache.apply(&watcher::Event::InitApply(request("same", "k1", "1")));
        cache.apply(&watcher::Event::InitApply(request("changed", "k2", "2")));
        cache.apply(&watcher::Event::InitApply(request("new", "k4", "1")));
        // The old view answers until the list is complete.
        assert!(cache.get("owners", "gone").is_some());
        assert!(cache.get("owners", "new").is_none());

        let changed = cache.apply(&watcher::Event::InitDone);
        assert_eq!(names(changed), ["k2", "k3", "k4"]);
        assert!(cache.get("owners", "gone").is_none());
        assert_eq!(
            cache
                .get("owners", "changed")
                .unwrap()
                .resource_version()
                .as_deref(),
            Some("2")
        );
        let mut all: Vec<_> = cache.all().into_iter().map(|(n, _)| n.name).collect();
        all.sort();
        assert_eq!(
            all,
            ["changed".into(), "new".into(), "same".into()] as [Box<str>; 3]
        );
    }
}
