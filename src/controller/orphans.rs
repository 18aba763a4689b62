//! Garbage collection of orphaned enforcement Secrets (and, in the same pass, of APIKeyRequests
//! whose APIKey is gone: see [`super::inbox::sweep`]): one whose APIKey — matched by the uid in
//! its ownership mark, never by name — no longer exists. The finalizer normally removes a key's
//! Secrets before the key goes; this covers every way around it (an admin forcing the finalizer
//! off, a key deleted while devportal was down and its webhook bypassed, a backup restored).
//! Enforcement Secrets of keys that exist but are not Approved are withdrawn by those keys' own
//! reconciles, which the Secret's events and every activation trigger.
//!
//! Only the enforcement namespace is swept: it is where devportal writes enforcement Secrets, and
//! tenants cannot write there. A Secret carrying the enforcement marks anywhere else is someone
//! else's, and deleting it would turn a tenant's `patch` on a Secret into a `delete` by devportal.
//!
//! A sweep runs when the replica becomes active (its caches synced), after an APIKey is deleted,
//! after an event of an enforcement Secret whose uid no key in the cache has, and every resync
//! period. Only the active replica sweeps. Candidates come from the Secret cache; each is read
//! live and deleted only if it still is devportal's enforcement Secret of a uid that neither the
//! key cache nor the API server (the key its annotation names) knows, with uid and
//! resourceVersion preconditions.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Preconditions};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::context::Context;
use crate::Result;
use crate::digest::digest;
use crate::resources::cached_key::CachedKey;
use crate::secrets::{self, Role};

/// Time for a burst of triggers (many keys deleted at once) to collapse into one sweep.
const SETTLE: Duration = Duration::from_millis(100);
/// Retry after a sweep that failed (the API server unavailable).
const RETRY: Duration = Duration::from_secs(5);

/// What asks for a sweep.
#[derive(Default)]
pub(super) struct Sweeps {
    wake: Notify,
}

impl Sweeps {
    /// Asks for a sweep soon.
    pub(super) fn request(&self) {
        self.wake.notify_one();
    }

    /// Asks for a sweep if the enforcement Secret `secret`, in `enforcement_namespace`, carries
    /// the uid of no key that `keys` has under the name its annotation gives (cheap: one lookup;
    /// the sweep does the rest).
    pub(super) fn check(
        &self,
        secret: &Secret,
        keys: &Store<CachedKey>,
        enforcement_namespace: &str,
    ) {
        if secret.metadata.namespace.as_deref() != Some(enforcement_namespace) {
            return;
        }
        let Some(uid) = secrets::enforcement_uid(&secret.metadata) else {
            return;
        };
        let named = secrets::owner_reference(&secret.metadata)
            .and_then(|r| r.split_once('/'))
            .and_then(|(ns, name)| keys.get(&ObjectRef::new(name).within(ns)));
        if named.is_none_or(|key| key.meta().uid.as_deref() != Some(uid)) {
            self.request();
        }
    }
}

/// Sweeps while active until `shutdown`.
pub(super) async fn run(
    ctx: Arc<Context>,
    keys: Store<CachedKey>,
    sweeps: Arc<Sweeps>,
    shutdown: CancellationToken,
) {
    let mut active = ctx.active.clone();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            became = active.wait_for(|a| *a) => if became.is_err() { return },
        }
        let swept = match sweep(&ctx, &keys).await {
            Ok(()) => super::inbox::sweep(&ctx, &keys).await,
            failed => failed,
        };
        let next = match swept {
            Ok(()) => ctx.config.resync,
            Err(error) => {
                tracing::warn!(%error, "garbage collection of enforcement Secrets or APIKeyRequests failed");
                RETRY
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = sweeps.wake.notified() => {}
            () = tokio::time::sleep(next) => {}
            changed = active.changed() => if changed.is_err() { return },
        }
        tokio::time::sleep(SETTLE).await;
    }
}

/// One pass over the enforcement Secrets in the cache, in the enforcement namespace.
async fn sweep(ctx: &Context, keys: &Store<CachedKey>) -> Result<()> {
    let namespace = ctx.enforcement.get();
    let live: HashSet<u64> = keys
        .state()
        .iter()
        .filter_map(|k| k.meta().uid.as_deref().map(digest))
        .collect();
    for name in ctx
        .secrets
        .enforcement_of_unknown_uids(&namespace, |uid| live.contains(&uid))
    {
        if !ctx.active() {
            break;
        }
        remove_if_orphaned(ctx, keys, &namespace, &name).await?;
    }
    Ok(())
}

/// Deletes the Secret `namespace/name` if, read live, it is an enforcement Secret of devportal
/// in the enforcement namespace whose APIKey no longer exists.
async fn remove_if_orphaned(
    ctx: &Context,
    keys: &Store<CachedKey>,
    namespace: &str,
    name: &str,
) -> Result<()> {
    if namespace != ctx.enforcement.get() {
        return Ok(());
    }
    let api = ctx.secret_api(namespace);
    let Some(current) = api.get_opt(name).await? else {
        return Ok(());
    };
    let meta = &current.metadata;
    let Some(uid) = secrets::enforcement_uid(meta) else {
        return Ok(());
    };
    if keys
        .state()
        .iter()
        .any(|k| k.meta().uid.as_deref() == Some(uid))
    {
        return Ok(());
    }
    // The cache may not have a key created a moment ago (another replica wrote its Secret):
    // the API server has the last word on the key the Secret names.
    if let Some((key_namespace, key_name)) =
        secrets::owner_reference(meta).and_then(|r| r.split_once('/'))
        && let Some(key) = Api::<CachedKey>::namespaced(ctx.client.clone(), key_namespace)
            .get_metadata_opt(key_name)
            .await?
        && key.metadata.uid.as_deref() == Some(uid)
    {
        return Ok(());
    }
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
        }),
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => {
            tracing::info!(secret = %format!("{namespace}/{name}"), apikey_uid = uid, "deleted an enforcement Secret whose APIKey no longer exists");
            ctx.metrics
                .controller
                .secret_deleted(Role::Enforcement.as_str());
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        // Changed since it was read (409): the sweep is retried shortly.
        Err(error) => Err(error.into()),
    }
}
