//! What the reconcilers share: the client, the caches and indexes, and the write helpers through
//! which every write goes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use tokio::sync::watch;

use super::args::Settings;
use super::index::{KeysByProduct, RefIndex, WrittenStatus};
use super::secret_cache::{OwnedSecret, SecretCache};
use crate::discovery::{Caches, FetchError, Fetcher, Target};
use crate::kube_ext::delete_ignoring_missing;
use crate::metrics::Metrics;
use crate::names::CONTROLLER_MANAGER;
use crate::resources::{APIKey, APIProduct};
use crate::secrets::Role;
use crate::{Error, Result};

/// A cached OIDC discovery: when it was fetched and the token endpoint or the error.
type OidcOutcome = (Instant, std::result::Result<String, FetchError>);

/// Everything the reconcilers share. Built once the watch caches have synced, so every
/// reconcile reads full caches.
pub struct Context {
    pub(super) client: Client,
    pub(super) config: Settings,
    pub(super) caches: Caches,
    /// The APIProducts, as the APIKey reconcile looks them up.
    pub(super) products: Store<APIProduct>,
    pub(super) secrets: Arc<SecretCache>,
    /// Route and policy targets → the products that use them.
    pub(super) targets: RefIndex<Target, APIProduct>,
    pub(super) key_products: KeysByProduct,
    pub(super) written: WrittenStatus,
    /// This replica's identity, the `reportingInstance` of its Events.
    pub(super) identity: String,
    pub(super) fetcher: Fetcher,
    pub(super) oidc: Mutex<HashMap<String, OidcOutcome>>,
    pub(super) failures: Mutex<HashMap<String, u32>>,
    pub(super) metrics: Arc<Metrics>,
    /// Signalled when a reconcile moved a key to another phase, so the phase gauge follows soon.
    pub(super) phase_changed: tokio::sync::Notify,
    /// Whether this replica is active: it holds the Lease and its caches have synced. Only an
    /// active replica reconciles and writes.
    pub(super) active: watch::Receiver<bool>,
}

impl Context {
    /// Whether this replica is active and may write.
    pub(super) fn active(&self) -> bool {
        *self.active.borrow()
    }

    /// Server-side-applies `status` on `object` with the controller's field manager.
    pub(super) async fn apply_status<K, S>(&self, object: &K, status: &S) -> Result<()>
    where
        K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        S: Serialize,
    {
        let api =
            Api::<K>::namespaced(self.client.clone(), &object.namespace().unwrap_or_default());
        let patch = serde_json::json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "status": status,
        });
        api.patch_status(
            &object.name_any(),
            &PatchParams::apply(CONTROLLER_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
        Ok(())
    }

    /// Server-side-applies a whole Secret of `role`.
    pub(super) async fn apply_secret(
        &self,
        api: &Api<Secret>,
        secret: &Secret,
        role: Role,
    ) -> Result<()> {
        api.patch(
            secret.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::apply(CONTROLLER_MANAGER).force(),
            &Patch::Apply(secret),
        )
        .await?;
        self.metrics.controller.secret_written(role.as_str());
        Ok(())
    }

    /// The Secrets devportal wrote for `key` that the cache holds.
    pub(super) fn secrets_of(&self, key: &APIKey) -> Vec<OwnedSecret> {
        self.secrets.owned_by(
            key.metadata.namespace.as_deref().unwrap_or_default(),
            key.metadata.name.as_deref().unwrap_or_default(),
        )
    }

    pub(super) async fn delete_secret(&self, secret: &OwnedSecret) -> Result<()> {
        let api = Api::<Secret>::namespaced(self.client.clone(), &secret.namespace);
        if delete_ignoring_missing(&api, &secret.name).await? {
            self.metrics.controller.secret_deleted(secret.role.as_str());
        }
        Ok(())
    }

    /// The OIDC token endpoint of `issuer`, cached for a few minutes (failures for less).
    pub(super) async fn token_endpoint(&self, issuer: &str) -> Result<String> {
        const KEEP_OK: Duration = Duration::from_secs(600);
        const KEEP_ERR: Duration = Duration::from_secs(20);
        if let Some((at, outcome)) = self.oidc.lock().expect("oidc cache").get(issuer) {
            let keep = if outcome.is_ok() { KEEP_OK } else { KEEP_ERR };
            if at.elapsed() < keep {
                return outcome.clone().map_err(Error::from);
            }
        }
        let outcome = self.fetcher.token_endpoint(issuer).await;
        if outcome.is_err() {
            self.metrics.controller.fetch_failed("oidc");
        }
        self.oidc
            .lock()
            .expect("oidc cache")
            .insert(issuer.to_string(), (Instant::now(), outcome.clone()));
        outcome.map_err(Error::from)
    }

    /// When to retry `object` after `error`: doubling from one second per consecutive failure,
    /// up to 5 s when the API server was briefly unavailable (so every key converges within
    /// seconds of it coming back) and up to 5 minutes for anything else.
    pub(super) fn backoff(&self, object: String, error: &Error) -> Action {
        let mut failures = self.failures.lock().expect("failure counts");
        let count = failures.entry(object).or_insert(0);
        *count = (*count + 1).min(9);
        let longest = if error.is_transient() {
            Duration::from_secs(5)
        } else {
            Duration::from_secs(300)
        };
        Action::requeue(Duration::from_millis(500 << *count).min(longest))
    }

    pub(super) fn succeeded(&self, object: &str) {
        self.failures.lock().expect("failure counts").remove(object);
    }
}
