//! What the reconcilers share: the client, the caches and indexes, and the write helpers through
//! which every write goes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use super::apikey::key_line::Holders;
use super::args::Settings;
use super::enforcement_namespace::EnforcementNamespace;
use super::event_budget::EventBudget;
use super::inbox::state::Inbox;
use super::index::{KeysByProduct, RefIndex, WrittenStatus};
use super::mac_key::MacKey;
use super::secret_cache::{OwnedSecret, SecretCache};
use crate::discovery::{Caches, FetchError, Fetcher, Target};
use crate::kube_ext::object_id;
use crate::metrics::Metrics;
use crate::names::CONTROLLER_MANAGER;
use crate::resources::cached_key::CachedKey;
use crate::resources::{APIKey, APIProduct};
use crate::secrets::{self, Role};
use crate::{Error, Result};

/// A cached OIDC discovery: when it was fetched and the token endpoint or the error.
type OidcOutcome = (Instant, std::result::Result<String, FetchError>);

/// Everything the reconcilers share. Built once the watch caches have synced, so every
/// reconcile reads full caches.
pub struct Context {
    pub(super) client: Client,
    pub(super) config: Settings,
    /// Where enforcement Secrets go.
    pub(super) enforcement: EnforcementNamespace,
    pub(super) caches: Caches,
    /// The APIProducts, as the APIKey reconcile looks them up.
    pub(super) products: Store<APIProduct>,
    /// The APIKeys, for what one key's reconcile needs to know of another: whose value is whose,
    /// and where a key stands in its line for the key limit.
    pub(super) keys: Store<CachedKey>,
    /// Asks the APIKey reconciler to reconcile a key again (one that must now give up a value).
    pub(super) nudge: mpsc::UnboundedSender<ObjectRef<CachedKey>>,
    pub(super) secrets: Arc<SecretCache>,
    /// The key of the MAC that vouches for generated values in consumer Secrets.
    pub(super) mac_key: MacKey,
    /// Route and policy targets → the products that use them.
    pub(super) targets: RefIndex<Target, APIProduct>,
    /// Products → the products whose keys would work on each other's API (see [`super::overlap`]).
    pub(super) overlaps: RefIndex<ObjectRef<APIProduct>, APIProduct>,
    pub(super) key_products: KeysByProduct,
    /// The APIKeyPolicies and the namespaces' labels they select by.
    pub(super) policies: super::policy::PolicyView,
    /// The owner's inbox: APIKeyRequests and APIKeyApprovals.
    pub(super) inbox: Inbox,
    /// Requester and product → their keys.
    pub(super) key_holders: Holders,
    pub(super) written: WrittenStatus,
    /// This replica's identity, the `reportingInstance` of its Events.
    pub(super) identity: String,
    pub(super) fetcher: Fetcher,
    pub(super) oidc: Mutex<HashMap<String, OidcOutcome>>,
    pub(super) failures: Mutex<HashMap<String, u32>>,
    /// Uids of the APIKeys in namespaces the webhook does not cover already warned about.
    pub(super) uncovered_warned: Mutex<HashSet<String>>,
    /// How many Normal Events may be written now (see [`EventBudget`]).
    pub(super) event_budget: EventBudget,
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
    ///
    /// Used for APIProducts (an APIKey's status is written with [`Context::replace_status`]).
    /// Converges from any status it finds. Someone else with rights on the status subresource can
    /// own fields the apply cannot remove, and with them leave a status the apply cannot produce
    /// (a field the controller drops stays half there without its required parts: 422 on every
    /// apply). When the API server refuses the apply that way ([`status_needs_reset`]), the
    /// status is cleared with a PUT made exact by the resourceVersion just read (which drops
    /// every other manager's fields), and applied again.
    pub(super) async fn apply_status<K, S>(&self, object: &K, status: &S) -> Result<()>
    where
        K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + Serialize
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
        let name = object.name_any();
        match api
            .patch_status(&name, &params_apply(), &Patch::Apply(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if status_needs_reset(&error) => {
                tracing::warn!(
                    object = %format!("{}/{name}", object.namespace().unwrap_or_default()),
                    %error,
                    "the status cannot be applied over what others wrote into it; clearing it"
                );
                let mut current = serde_json::to_value(api.get(&name).await?)?;
                if let Some(fields) = current.as_object_mut() {
                    fields.remove("status");
                }
                let params = PostParams {
                    dry_run: false,
                    field_manager: Some(CONTROLLER_MANAGER.into()),
                };
                let cleared: K = serde_json::from_value(current)?;
                api.replace_status(&name, &params, &cleared).await?;
                api.patch_status(&name, &params_apply(), &Patch::Apply(&patch))
                    .await?;
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Writes `status` as the whole status of `object` with a `PUT` exact on the version the
    /// controller read (cheaper for the API server than a server-side apply: one merge, no
    /// field-manager bookkeeping), replacing whatever anyone wrote into it. If the object changed
    /// since (the cache is behind), the status goes onto the live version: like a forced apply,
    /// it states what the controller computed, and the newer version's watch event brings the
    /// next reconcile.
    pub(super) async fn replace_status<K, S>(&self, object: &K, status: &S) -> Result<()>
    where
        K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + Serialize
            + std::fmt::Debug,
        S: Serialize,
    {
        let api =
            Api::<K>::namespaced(self.client.clone(), &object.namespace().unwrap_or_default());
        let name = object.name_any();
        let with_status = |object: &K| -> Result<K> {
            let mut body = serde_json::to_value(object)?;
            body["status"] = serde_json::to_value(status)?;
            Ok(serde_json::from_value(body)?)
        };
        match api
            .replace_status(&name, &write_params(), &with_status(object)?)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(refused)) if refused.code == 409 => {
                let live = api.get(&name).await?;
                api.replace_status(&name, &write_params(), &with_status(&live)?)
                    .await?;
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The Secrets API of `namespace`.
    pub(super) fn secret_api(&self, namespace: &str) -> Api<Secret> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Creates `secret` (of `role`). Never writes over an existing Secret: one that exists
    /// already (someone else's, or ours not yet in the cache) fails the call with 409, and the
    /// reconcile retries, reading it first.
    pub(super) async fn create_secret(&self, secret: &Secret, role: Role) -> Result<()> {
        let api = self.secret_api(secret.metadata.namespace.as_deref().unwrap_or_default());
        api.create(&write_params(), secret).await?;
        self.metrics.controller.secret_written(role.as_str());
        Ok(())
    }

    /// Replaces the whole of `current` — one of ours, just read — with `desired`: data, labels
    /// and annotations exactly, whoever added or changed anything. Fails with 409 if `current`
    /// changed since it was read.
    pub(super) async fn replace_secret(
        &self,
        current: &Secret,
        mut desired: Secret,
        role: Role,
    ) -> Result<()> {
        desired.metadata.resource_version = current.metadata.resource_version.clone();
        let api = self.secret_api(current.metadata.namespace.as_deref().unwrap_or_default());
        let name = current.metadata.name.as_deref().unwrap_or_default();
        api.replace(name, &write_params(), &desired).await?;
        self.metrics.controller.secret_written(role.as_str());
        Ok(())
    }

    /// The Secrets of `key` that the cache holds: those whose marks say they are devportal's
    /// own for this very APIKey (see [`secrets::belongs_to`]) and that sit where it writes them
    /// ([`secrets::sits_where_written`]); a copy of the marks elsewhere is ignored.
    pub(super) fn secrets_of(&self, key: &APIKey) -> Vec<OwnedSecret> {
        let uid = key.metadata.uid.as_deref().unwrap_or_default();
        let legacy = secrets::legacy_enforcement_name(key);
        let enforcement = self.enforcement.get();
        let mut owned = self.secrets.owned_by(
            key.metadata.namespace.as_deref().unwrap_or_default(),
            key.metadata.name.as_deref().unwrap_or_default(),
        );
        owned.retain(|s| {
            secrets::sits_where_written(&s.namespace, s.role, key, &enforcement)
                && ((!uid.is_empty() && s.cached.marked_for(uid))
                    || (s.cached.unmarked() && s.role == Role::Enforcement && s.name == legacy))
        });
        owned
    }

    /// Deletes the Secret `namespace/name` if it is `key`'s own and sits where devportal writes
    /// it, checked on the live object and made exact by a uid precondition. Anything else is left
    /// alone.
    pub(super) async fn delete_own_secret(
        &self,
        key: &APIKey,
        namespace: &str,
        name: &str,
    ) -> Result<()> {
        let api = self.secret_api(namespace);
        let Some(current) = api.get_opt(name).await? else {
            return Ok(());
        };
        let placed = secrets::role_of(&current.metadata).is_some_and(|role| {
            secrets::sits_where_written(namespace, role, key, &self.enforcement.get())
        });
        if !placed || !secrets::belongs_to(&current.metadata, key) {
            tracing::warn!(secret = %object_id(&current.metadata), "not deleting a Secret that is not devportal's own for this key");
            return Ok(());
        }
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: current.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(name, &params).await {
            Ok(_) => {
                let role = secrets::role_of(&current.metadata).unwrap_or(Role::Enforcement);
                self.metrics.controller.secret_deleted(role.as_str());
                Ok(())
            }
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(error) => Err(error.into()),
        }
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
    /// capped by what the error says about when it clears ([`super::retry`]).
    pub(super) fn backoff(&self, object: String, error: &Error) -> Action {
        let mut failures = self.failures.lock().expect("failure counts");
        let count = failures.entry(object).or_insert(0);
        *count = (*count + 1).min(10);
        Action::requeue(super::retry::delay(*count, super::retry::classify(error)))
    }

    pub(super) fn succeeded(&self, object: &str) {
        self.failures.lock().expect("failure counts").remove(object);
    }
}

fn params_apply() -> PatchParams {
    PatchParams::apply(CONTROLLER_MANAGER).force()
}

/// Whether the API server refused a status apply because of what is already in the status rather
/// than because the controller is wrong or the server unwell: 422 (the merge of the apply with
/// fields others own is invalid) or 409, or a live object the apply cannot even read as typed
/// (duplicate list-map entries stored before the schema said so).
pub(super) fn status_needs_reset(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => {
            status.code == 422
                || status.code == 409
                || (status.code == 500
                    && status
                        .message
                        .contains("failed to create typed live object"))
        }
        _ => false,
    }
}

fn write_params() -> PostParams {
    PostParams {
        dry_run: false,
        field_manager: Some(CONTROLLER_MANAGER.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::status_needs_reset;

    fn api_error(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure(message, "")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn a_status_others_made_unappliable_is_reset_and_nothing_else_is() {
        let invalid =
            "APIKey \"k\" is invalid: status.authScheme.authenticationSpec: Required value";
        assert!(status_needs_reset(&api_error(422, invalid)));
        assert!(status_needs_reset(&api_error(409, "conflict")));
        assert!(status_needs_reset(&api_error(
            500,
            "failed to create typed live object: .status.conditions: duplicate entries for key [type=\"Pending\"]"
        )));
        // The server unwell, the object gone, the controller not allowed: retried, never reset.
        assert!(!status_needs_reset(&api_error(
            500,
            "etcdserver: leader changed"
        )));
        assert!(!status_needs_reset(&api_error(503, "unavailable")));
        assert!(!status_needs_reset(&api_error(404, "not found")));
        assert!(!status_needs_reset(&api_error(403, "forbidden")));
    }
}
