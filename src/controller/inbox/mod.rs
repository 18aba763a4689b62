//! The owner's inbox: one APIKeyRequest per APIKey, in the product's namespace, and the
//! APIKeyApprovals owners answer them with.
//!
//! The APIKey reconcile drives it: [`review`] first writes the latest APIKeyApproval of the key's
//! request into the key's `spec.approval` (when it is later than the review the key carries, so
//! the latest review wins whichever way it came), then [`sync`] server-side-applies the request
//! (spec mirrored from the key, status from its phase and review) and [`remove`] deletes it with
//! the key. [`triggers`] maps request and approval events to keys. [`sweep`] deletes requests whose key is gone or targets another namespace now. The
//! pure parts live in [`desired`].

mod desired;
pub(super) mod state;
#[cfg(test)]
mod tests;
pub(super) mod triggers;

use std::collections::HashMap;

use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};

pub use desired::{Decision, decide, latest, request_name, request_phase};

use super::apikey::phase::Evaluation;
use super::context::Context;
use crate::Result;
use crate::names::key_reason::AUTO_APPROVED;
use crate::names::request_reason::{APPROVAL_APPLIED, APPROVAL_OUTDATED};
use crate::names::{API_VERSION, APIKEY_ANNOTATION, APIKEY_UID_LABEL, CONTROLLER_MANAGER};
use crate::resources::cached_key::CachedKey;
use crate::resources::{APIKey, APIKeyPhase, APIKeyRequest, APIProduct};

/// The namespace of `key`'s request: its product's, while the product exists and is not being
/// deleted (with no product there is no owner to review, and no request).
fn request_namespace<'a>(key: &'a APIKey, product: Option<&APIProduct>) -> Option<&'a str> {
    product
        .filter(|p| p.meta().deletion_timestamp.is_none())
        .and(key.product_namespace())
}

/// Writes the latest APIKeyApproval of `key`'s request into the key's `spec.approval`, if it is
/// later than the review the key carries and reviewed the key's current tier and product.
/// Returns whether it wrote (the key's next reconcile goes on from there).
pub(super) async fn review(
    key: &APIKey,
    product: Option<&APIProduct>,
    ctx: &Context,
) -> Result<bool> {
    let Some(namespace) = request_namespace(key, product) else {
        return Ok(false);
    };
    let name = request_name(key);
    let approvals = ctx.inbox.approvals_of(namespace, &name);
    let Some(approval) = latest(approvals.iter().map(|a| &**a)) else {
        return Ok(false);
    };
    let product_uid = product.and_then(|p| p.meta().uid.as_deref());
    match decide(key, approval, product_uid) {
        Decision::Nothing => Ok(false),
        Decision::Outdated(why) => {
            let uid = approval.metadata.uid.clone().unwrap_or_default();
            let first = ctx
                .inbox
                .outdated_warned
                .lock()
                .expect("warned")
                .insert(uid);
            if first {
                ctx.publish_event(
                    approval,
                    true,
                    APPROVAL_OUTDATED,
                    &format!("not applied: {why}; review the request again"),
                )
                .await;
            }
            Ok(false)
        }
        Decision::Write(review) => {
            // Exact: a review written on the key meanwhile (which may be later) fails the test.
            let patch = serde_json::json!([
                {"op": "test", "path": "/metadata/resourceVersion",
                 "value": key.metadata.resource_version},
                {"op": "add", "path": "/spec/approval", "value": review},
            ]);
            Api::<APIKey>::namespaced(ctx.client.clone(), &key.namespace().unwrap_or_default())
                .patch(
                    &key.name_any(),
                    &PatchParams {
                        field_manager: Some(CONTROLLER_MANAGER.into()),
                        ..PatchParams::default()
                    },
                    &Patch::Json::<()>(serde_json::from_value(patch)?),
                )
                .await?;
            let verdict = if review.approved {
                "approved"
            } else {
                "denied"
            };
            ctx.publish_event(
                approval,
                false,
                APPROVAL_APPLIED,
                &format!(
                    "{verdict} by {}: applied to APIKey {}/{}",
                    review.reviewed_by.as_deref().unwrap_or("a reviewer"),
                    key.namespace().unwrap_or_default(),
                    key.name_any()
                ),
            )
            .await;
            Ok(true)
        }
    }
}

/// Keeps `key`'s APIKeyRequest in step with the key and `evaluation`: created or updated by
/// server-side apply when it differs, an Event when its phase changes. With no product, any
/// request of the key is removed.
pub(super) async fn sync(
    key: &APIKey,
    product: Option<&APIProduct>,
    evaluation: &Evaluation,
    ctx: &Context,
) -> Result<()> {
    let Some(namespace) = request_namespace(key, product) else {
        return remove(key, ctx).await;
    };
    let uid = key.metadata.uid.clone().unwrap_or_default();
    let name = request_name(key);
    let cached = ctx
        .inbox
        .requests
        .get(&ObjectRef::new(&name).within(namespace));
    if let Some(other) = cached
        .as_ref()
        .filter(|r| r.labels().get(APIKEY_UID_LABEL) != Some(&uid))
    {
        tracing::warn!(request = %format!("{namespace}/{name}"), other_uid = ?other.labels().get(APIKEY_UID_LABEL), "an APIKeyRequest of this name belongs to another APIKey; not overwriting it");
        return Ok(());
    }
    let spec = desired::request_spec(key);
    let api = Api::<APIKeyRequest>::namespaced(ctx.client.clone(), namespace);
    // The request's version this reconcile builds on: the cached one, or the one our spec write
    // just made.
    let mut based_on = cached
        .as_ref()
        .and_then(|r| r.metadata.resource_version.clone());
    if cached.as_ref().is_none_or(|r| r.spec != spec) {
        let object = serde_json::json!({
            "apiVersion": API_VERSION,
            "kind": "APIKeyRequest",
            "metadata": {
                "name": name,
                "labels": {APIKEY_UID_LABEL: uid},
                "annotations": {APIKEY_ANNOTATION: format!("{}/{}", key.namespace().unwrap_or_default(), key.name_any())},
            },
            "spec": spec,
        });
        let applied = api
            .patch(
                &name,
                &PatchParams::apply(CONTROLLER_MANAGER).force(),
                &Patch::Apply(&object),
            )
            .await?;
        based_on = applied.metadata.resource_version;
    }
    let approvals = ctx.inbox.approvals_of(namespace, &name);
    let applied = approvals
        .iter()
        .find(|a| desired::carries(key, a))
        .map(|a| a.name_any());
    let previous = cached
        .as_ref()
        .and_then(|r| r.status.as_ref())
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let status = desired::request_status(
        key,
        evaluation.phase,
        &evaluation.message,
        applied,
        &previous,
        Timestamp::now(),
    );
    let stored = cached.as_ref().and_then(|r| r.status.as_ref());
    // Written already from this very version of the request: the cache has not caught up yet.
    let written = (based_on.clone(), desired::status_digest(&status));
    let already = ctx.inbox.status_written.lock().expect("written").get(&uid) == Some(&written);
    if stored != Some(&status) && !already {
        let mut request = APIKeyRequest::new(&name, spec);
        request.metadata.namespace = Some(namespace.to_string());
        ctx.apply_status(&request, &status).await?;
        ctx.inbox
            .status_written
            .lock()
            .expect("written")
            .insert(uid.clone(), written);
        let phase = request_phase(evaluation.phase).to_string();
        let before = ctx
            .inbox
            .announced
            .lock()
            .expect("announced")
            .insert(uid, phase.clone());
        // An automatic approval needs no owner: the key's own Event tells its requester.
        if before.as_ref() != Some(&phase)
            && stored.and_then(|s| s.phase.as_ref()) != Some(&phase)
            && evaluation.reason != AUTO_APPROVED
        {
            ctx.publish_event(
                &request,
                evaluation.phase == APIKeyPhase::Failed,
                &phase,
                &evaluation.message,
            )
            .await;
        }
    }
    Ok(())
}

/// Deletes every APIKeyRequest of `key` (found by the key's uid), wherever it is.
pub(super) async fn remove(key: &APIKey, ctx: &Context) -> Result<()> {
    let uid = key.metadata.uid.as_deref().unwrap_or_default();
    ctx.inbox.announced.lock().expect("announced").remove(uid);
    ctx.inbox
        .status_written
        .lock()
        .expect("written")
        .remove(uid);
    let mut found: Vec<(String, String, Option<String>)> = ctx
        .inbox
        .requests
        .state()
        .iter()
        .filter(|r| r.labels().get(APIKEY_UID_LABEL).map(String::as_str) == Some(uid))
        .map(|r| (r.namespace().unwrap_or_default(), r.name_any(), r.uid()))
        .collect();
    // One created a moment ago may not be in the cache yet: its name is known.
    let name = request_name(key);
    if let Some(namespace) = key.product_namespace()
        && !found.iter().any(|(ns, n, _)| ns == namespace && *n == name)
        && ctx
            .inbox
            .requests
            .get(&ObjectRef::new(&name).within(namespace))
            .is_none()
    {
        found.push((namespace.to_string(), name, None));
    }
    for (namespace, name, request_uid) in found {
        delete(ctx, &namespace, &name, request_uid).await?;
    }
    Ok(())
}

async fn delete(ctx: &Context, namespace: &str, name: &str, uid: Option<String>) -> Result<()> {
    let params = DeleteParams {
        preconditions: uid.map(|uid| Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match Api::<APIKeyRequest>::namespaced(ctx.client.clone(), namespace)
        .delete(name, &params)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Deletes the APIKeyRequests whose APIKey (by the uid label) no longer exists, or now targets a
/// product in another namespace. A key the cache does not know is read live before its request
/// goes.
pub(super) async fn sweep(ctx: &Context, keys: &Store<CachedKey>) -> Result<()> {
    let live: HashMap<String, String> = keys
        .state()
        .iter()
        .filter_map(|k| {
            Some((
                k.meta().uid.clone()?,
                k.product_namespace().unwrap_or_default().to_string(),
            ))
        })
        .collect();
    for request in ctx.inbox.requests.state() {
        if !ctx.active() {
            break;
        }
        let namespace = request.namespace().unwrap_or_default();
        let uid = request.labels().get(APIKEY_UID_LABEL);
        if uid.and_then(|u| live.get(u)) == Some(&namespace) {
            continue;
        }
        let reference = &request.spec.api_key_ref;
        let key = Api::<APIKey>::namespaced(ctx.client.clone(), &reference.namespace)
            .get_opt(&reference.name)
            .await?;
        if let Some(key) = key
            && key.metadata.uid.as_ref() == uid
            && key.product_namespace() == Some(namespace.as_str())
        {
            continue;
        }
        tracing::info!(request = %format!("{namespace}/{}", request.name_any()), "deleting an APIKeyRequest whose APIKey is gone or moved");
        delete(ctx, &namespace, &request.name_any(), request.uid()).await?;
    }
    Ok(())
}
