//! The owner's inbox: one APIKeyRequest per APIKey, in the product's namespace, and the
//! APIKeyApprovals owners answer them with.
//!
//! The APIKey reconcile drives it: [`review`] first writes the latest APIKeyApproval of the key's
//! request into the key's `spec.approval` (when it is later than the review the key carries, so
//! the latest review wins whichever way it came, in [`standing`]'s strict order) and says on each
//! APIKeyApproval whether it counts ([`approval_status`]), then [`sync`] keeps the request in step (spec
//! mirrored from the key, status from its phase and review), at once or through the [`lane`]
//! (its queue in [`queue`]), and [`remove`] deletes it with the key. [`triggers`] maps request
//! and approval events to keys. [`sweep`] deletes requests whose key is gone or targets another
//! namespace now. The pure parts live in [`desired`] and [`standing`].

mod approval_status;
mod desired;
pub(crate) mod lane;
pub(crate) mod queue;
pub(super) mod requests;
mod standing;
pub(super) mod state;
mod sync;
#[cfg(test)]
mod tests;
pub(super) mod triggers;

use std::collections::HashMap;

use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::reflector::Store;
use kube::{Api, Resource, ResourceExt};

pub use desired::request_name;
pub use standing::{Decision, decide, latest, standing, unless_expired};

use super::apikey::phase::Evaluation;
use super::context::Context;
use crate::Result;
use crate::names::CONTROLLER_MANAGER;
use crate::names::request_reason::APPROVAL_APPLIED;
use crate::resources::cached_key::CachedKey;
use crate::resources::{APIKey, APIKeyApproval, APIKeyRequest, APIProduct, Approval};
use sync::Plan;

/// The namespace of `key`'s request: its product's, while the product exists and is not being
/// deleted (with no product there is no owner to review, and no request).
pub(super) fn request_namespace<'a>(
    key: &'a APIKey,
    product: Option<&APIProduct>,
) -> Option<&'a str> {
    product
        .filter(|p| p.meta().deletion_timestamp.is_none())
        .and(key.product_namespace())
}

/// Writes the latest APIKeyApproval of `key`'s request into the key's `spec.approval`, if it is
/// later than the review the key carries (and than any withdrawal of it) and reviewed the key's
/// current tier and product; then says on every APIKeyApproval of the request whether it counts
/// (see [`approval_status`]). Returns whether it wrote the key (the key's next reconcile goes on
/// from there).
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
    let expiry = super::apikey::phase::expiry(key, ctx.config.key_limit.max_lifetime());
    let decision = unless_expired(decide(key, approval, product_uid), expiry, Timestamp::now());
    let wrote = match &decision {
        // Not applied: the approval's status says why (and a Warning Event, once).
        Decision::Carried
        | Decision::Superseded(_)
        | Decision::Outdated(_)
        | Decision::KeyExpired(_) => false,
        Decision::Write(review) => {
            write_review(key, approval, review, ctx).await?;
            true
        }
    };
    for each in &approvals {
        approval_status::write(each, standing(each, approval, &decision), ctx).await;
    }
    Ok(wrote)
}

/// Writes `review` (of `approval`) into `key`'s `spec.approval`, exactly on the key as read.
async fn write_review(
    key: &APIKey,
    approval: &APIKeyApproval,
    review: &Approval,
    ctx: &Context,
) -> Result<()> {
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
    Ok(())
}

/// Keeps `key`'s APIKeyRequest in step with the key and `evaluation` (see [`sync`]): at once,
/// or through the [`lane`] when the key is approved automatically. With no product, any request
/// of the key is removed.
pub(super) async fn sync(
    key: &APIKey,
    product: Option<&APIProduct>,
    evaluation: &Evaluation,
    ctx: &Context,
) -> Result<()> {
    match sync::plan(key, product, evaluation, ctx) {
        Plan::Nothing => Ok(()),
        Plan::Remove => remove(key, ctx).await,
        Plan::Write(_) if lane::deferrable(evaluation) => {
            ctx.inbox.lane.push(key);
            Ok(())
        }
        Plan::Write(write) => write.run(key, evaluation, ctx).await,
    }
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
        .all()
        .into_iter()
        .filter(|(_, r)| r.key_uid() == Some(uid))
        .map(|(n, r)| (n.namespace.into(), n.name.into(), r.uid()))
        .collect();
    // One created a moment ago may not be in the cache yet: its name is known.
    let name = request_name(key);
    if let Some(namespace) = key.product_namespace()
        && !found.iter().any(|(ns, n, _)| ns == namespace && *n == name)
        && ctx.inbox.requests.get(namespace, &name).is_none()
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
    for (name, request) in ctx.inbox.requests.all() {
        if !ctx.active() {
            break;
        }
        let namespace = name.namespace.to_string();
        let uid = request.key_uid();
        if uid.and_then(|u| live.get(u)) == Some(&namespace) {
            continue;
        }
        let reference = request.api_key_ref();
        let key = Api::<APIKey>::namespaced(ctx.client.clone(), &reference.namespace)
            .get_opt(&reference.name)
            .await?;
        if let Some(key) = key
            && key.metadata.uid.as_deref() == uid
            && key.product_namespace() == Some(namespace.as_str())
        {
            continue;
        }
        tracing::info!(request = %format!("{namespace}/{}", name.name), "deleting an APIKeyRequest whose APIKey is gone or moved");
        delete(ctx, &namespace, &name.name, request.uid()).await?;
    }
    Ok(())
}
