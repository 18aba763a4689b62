//! Where enforcement Secrets go: `--enforcement-namespace`, by default `kuadrant-system`. It never
//! moves by itself. kuadrant-operator puts every AuthConfig in the namespace of the `Kuadrant` CR
//! it serves, but a tenant may be able to create a Kuadrant CR (OLM aggregates Kuadrant's CRDs into
//! `edit`), so devportal does not follow one: it reports a Kuadrant CR outside the enforcement
//! namespace ([`super::kuadrant_report`]: a warning log and Event on the CR, the gauge
//! `devportal_kuadrant_namespace_mismatch`) and leaves the decision to the operator.
//!
//! Releases before this one followed the oldest Kuadrant CR when the flag was unset. So that an
//! upgrade never moves working keys away from the AuthConfigs, [`EnforcementNamespace::resolve`]
//! refuses to start without the flag when that CR is elsewhere, naming the flag to set.
//!
//! When the namespace is deleted (every enforcement Secret with it), keys whose Secret is gone
//! say so ([`EnforcementNamespace::unavailable`]) without writing to the API server, which is busy
//! deleting thousands of Secrets; when it is created again, [`returns`] reconciles every key at
//! once rather than each at its next retry.

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ApiResource, DynamicObject, ListParams, ObjectMeta};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use crate::names::{DEFAULT_KUADRANT_NAMESPACE, KUADRANT_GROUP, KUADRANT_VERSION};
use crate::{Error, Result};

/// The enforcement namespace, fixed for the life of the process.
#[derive(Clone, Debug)]
pub struct EnforcementNamespace(Arc<str>);

impl EnforcementNamespace {
    /// The namespace.
    pub fn get(&self) -> String {
        self.0.to_string()
    }

    /// Why no Secret can be written into the namespace now, by the Namespace cache `namespaces`:
    /// it is missing or being deleted. `None` when it exists (a stale cache errs either
    /// way briefly: the API server refuses a write it cannot take, and the cache's news of the
    /// namespace's return reconciles every key).
    pub fn unavailable(&self, namespaces: &Store<PartialObjectMeta<Namespace>>) -> Option<String> {
        let namespace = &*self.0;
        let usable = namespaces
            .get(&ObjectRef::new(namespace))
            .is_some_and(|found| found.metadata.deletion_timestamp.is_none());
        // One message for both: a key's status is not rewritten when the namespace goes from
        // terminating to gone.
        (!usable).then(|| format!(
            "the enforcement namespace {namespace} is missing or being deleted, so the key's enforcement Secret cannot be written; it is written as soon as the namespace exists again"
        ))
    }

    /// `configured` when given. Unset, `kuadrant-system` — unless the Kuadrant CR an earlier
    /// release would have followed (the oldest, looked up now, retrying while the API server is
    /// unavailable) is elsewhere: then devportal refuses to start, naming the flag to set, rather
    /// than move every key's Secret away from the AuthConfigs.
    pub async fn resolve(
        configured: Option<String>,
        client: &Client,
        shutdown: &CancellationToken,
    ) -> Result<Self> {
        if let Some(namespace) = configured {
            tracing::info!(%namespace, "enforcement namespace (--enforcement-namespace)");
            return Ok(Self(namespace.into()));
        }
        let crs = loop {
            match list(client).await {
                Ok(crs) => break crs,
                Err(kube::Error::Api(status)) if status.code == 403 => {
                    return Err(Error::Config(format!(
                        "cannot list kuadrants.kuadrant.io ({}): without --enforcement-namespace devportal checks that no Kuadrant CR outside {DEFAULT_KUADRANT_NAMESPACE} holds keys of an earlier release; grant `list` on them or set --enforcement-namespace",
                        status.message
                    )));
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot list Kuadrant CRs yet; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => return Err(Error::ShuttingDown),
                        () = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                }
            }
        };
        if let Some(followed) = in_force(crs.iter()).filter(|ns| ns != DEFAULT_KUADRANT_NAMESPACE) {
            return Err(Error::Config(upgrade_refusal(&followed)));
        }
        let namespace = DEFAULT_KUADRANT_NAMESPACE;
        tracing::info!(%namespace, "enforcement namespace (the default)");
        Ok(Self(namespace.into()))
    }
}

/// Emits each time the enforcement namespace `enforcement` returns: a Namespace watch event shows
/// it active (not being deleted) under a uid other than the last one seen active, after the
/// watch's first list (at start every key is reconciled anyway).
pub(super) fn returns(
    namespaces: impl Stream<
        Item = std::result::Result<watcher::Event<PartialObjectMeta<Namespace>>, watcher::Error>,
    > + Send,
    enforcement: EnforcementNamespace,
) -> impl Stream<Item = ()> + Send {
    let mut incarnation = Incarnation::default();
    namespaces.filter_map(move |event| {
        let returned = event
            .ok()
            .is_some_and(|event| incarnation.returned(&event, &enforcement.0));
        if returned {
            tracing::info!(namespace = %enforcement.0, "enforcement namespace created again; reconciling every key");
        }
        futures::future::ready(returned.then_some(()))
    })
}

/// What the Namespace watch has shown of the enforcement namespace.
#[derive(Debug, Default)]
struct Incarnation {
    /// The watch has listed once.
    listed: bool,
    /// The uid under which it was last seen active.
    active_uid: Option<String>,
}

impl Incarnation {
    /// Takes in `event`; true when it shows namespace `name` back (see [`returns`]).
    fn returned(
        &mut self,
        event: &watcher::Event<PartialObjectMeta<Namespace>>,
        name: &str,
    ) -> bool {
        let namespace = match event {
            watcher::Event::InitDone => {
                self.listed = true;
                return false;
            }
            watcher::Event::Init | watcher::Event::Delete(_) => return false,
            watcher::Event::Apply(namespace) | watcher::Event::InitApply(namespace) => namespace,
        };
        let meta = &namespace.metadata;
        if meta.name.as_deref() != Some(name) || meta.deletion_timestamp.is_some() {
            return false;
        }
        let new = meta.uid != self.active_uid;
        self.active_uid.clone_from(&meta.uid);
        new && self.listed
    }
}

/// Why devportal does not start without the flag when the Kuadrant CR an earlier release
/// followed is in `followed`.
fn upgrade_refusal(followed: &str) -> String {
    format!(
        "--enforcement-namespace is unset and the oldest Kuadrant CR is in namespace {followed:?}, \
         not {DEFAULT_KUADRANT_NAMESPACE:?}. Earlier releases followed that CR, so API-key Secrets \
         may be there; devportal no longer follows a Kuadrant CR (a tenant may be able to create \
         one) and will not move them by guessing. If kuadrant-operator serves that CR, set \
         --enforcement-namespace={followed} (keys stay where they work); if it does not, set \
         --enforcement-namespace={DEFAULT_KUADRANT_NAMESPACE} (every enforcement Secret moves \
         there) and remove the CR"
    )
}

/// The Kuadrant CRs' metadata; none when the kind is not installed.
pub(super) async fn list(client: &Client) -> std::result::Result<Vec<ObjectMeta>, kube::Error> {
    let resource = ApiResource {
        group: KUADRANT_GROUP.into(),
        version: KUADRANT_VERSION.into(),
        api_version: format!("{KUADRANT_GROUP}/{KUADRANT_VERSION}"),
        kind: "Kuadrant".into(),
        plural: "kuadrants".into(),
    };
    let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
    match api.list_metadata(&ListParams::default()).await {
        Ok(list) => Ok(list.items.into_iter().map(|k| k.metadata).collect()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Vec::new()),
        Err(error) => Err(error),
    }
}

/// The namespace of the CR kuadrant-operator serves, which earlier releases followed: the oldest
/// not being deleted (then by namespace and name, so the choice is stable).
fn in_force<'a>(crs: impl Iterator<Item = &'a ObjectMeta>) -> Option<String> {
    crs.filter(|m| m.deletion_timestamp.is_none())
        .min_by(|a, b| {
            (&a.creation_timestamp, &a.namespace, &a.name).cmp(&(
                &b.creation_timestamp,
                &b.namespace,
                &b.name,
            ))
        })
        .and_then(|m| m.namespace.clone())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn cr(namespace: &str, created: &str, deleting: bool) -> ObjectMeta {
        ObjectMeta {
            name: Some("kuadrant".into()),
            namespace: Some(namespace.into()),
            creation_timestamp: Some(Time(created.parse().unwrap())),
            deletion_timestamp: deleting.then(|| Time("2026-06-01T00:00:00Z".parse().unwrap())),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn the_cr_an_earlier_release_followed_is_the_oldest_not_being_deleted() {
        let crs = [
            cr("newer", "2026-03-01T00:00:00Z", false),
            cr("oldest-deleting", "2026-01-01T00:00:00Z", true),
            cr("older", "2026-02-01T00:00:00Z", false),
        ];
        assert_eq!(in_force(crs.iter()).as_deref(), Some("older"));
        assert_eq!(in_force(crs[1..2].iter()), None);
    }

    fn namespace(name: &str, uid: &str, deleting: bool) -> PartialObjectMeta<Namespace> {
        PartialObjectMeta::<Namespace> {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some(uid.into()),
                deletion_timestamp: deleting.then(|| Time("2026-06-01T00:00:00Z".parse().unwrap())),
                ..ObjectMeta::default()
            },
            ..PartialObjectMeta::default()
        }
    }

    #[test]
    fn the_namespace_returns_when_it_is_active_under_a_new_uid_after_the_first_list() {
        use watcher::Event::{Apply, Delete, Init, InitApply, InitDone};
        let mut seen = Incarnation::default();
        let mut returned = |event| seen.returned(&event, "kuadrant-system");
        // The first list: present, but nothing returned.
        assert!(!returned(Init));
        assert!(!returned(InitApply(namespace(
            "kuadrant-system",
            "a",
            false
        ))));
        assert!(!returned(InitDone));
        // Other namespaces and label changes are not a return.
        assert!(!returned(Apply(namespace("tenant", "t", false))));
        assert!(!returned(Apply(namespace("kuadrant-system", "a", false))));
        // Deleted: terminating, then gone; created again under a new uid: back, once.
        assert!(!returned(Apply(namespace("kuadrant-system", "a", true))));
        assert!(!returned(Delete(namespace("kuadrant-system", "a", true))));
        assert!(returned(Apply(namespace("kuadrant-system", "b", false))));
        assert!(!returned(Apply(namespace("kuadrant-system", "b", false))));
        // Deleted and created again while the watch was down: the re-list shows the new uid.
        assert!(!returned(Init));
        assert!(returned(InitApply(namespace(
            "kuadrant-system",
            "c",
            false
        ))));
        assert!(!returned(InitDone));
    }

    #[test]
    fn a_namespace_created_after_devportal_started_counts_as_returned() {
        let mut seen = Incarnation::default();
        assert!(!seen.returned(&watcher::Event::InitDone, "kuadrant-system"));
        assert!(seen.returned(
            &watcher::Event::Apply(namespace("kuadrant-system", "a", false)),
            "kuadrant-system"
        ));
    }

    #[test]
    fn the_namespace_is_unavailable_while_missing_or_being_deleted() {
        use kube::runtime::reflector::store::Writer;
        let enforcement = EnforcementNamespace("kuadrant-system".into());
        let mut writer = Writer::<PartialObjectMeta<Namespace>>::default();
        let store = writer.as_reader();
        let missing = enforcement.unavailable(&store).unwrap();
        assert!(
            missing.contains("kuadrant-system is missing or being deleted"),
            "{missing}"
        );
        writer.apply_watcher_event(&watcher::Event::Apply(namespace(
            "kuadrant-system",
            "a",
            true,
        )));
        assert_eq!(enforcement.unavailable(&store), Some(missing));
        writer.apply_watcher_event(&watcher::Event::Apply(namespace(
            "kuadrant-system",
            "b",
            false,
        )));
        assert_eq!(enforcement.unavailable(&store), None);
    }

    #[test]
    fn the_refusal_names_the_flags_to_set() {
        let refusal = upgrade_refusal("kuadrant-prod");
        assert!(
            refusal.contains("--enforcement-namespace=kuadrant-prod")
                && refusal.contains("--enforcement-namespace=kuadrant-system"),
            "{refusal}"
        );
    }
}
