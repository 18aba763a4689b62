//! Recording an automatic approval: when a product in `approvalMode: automatic` approves a key,
//! the controller writes that approval into the key's `spec.approval` (reviewer
//! [`AUTOMATIC_REVIEWER`], time, and the product uid and tier it binds), so the grant outlives the
//! mode: a product switched to manual keeps the keys it already approved, and only new requests
//! wait for review. The admission webhook lets the controller's identity write exactly this
//! (`src/webhook/rules/automatic.rs`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::{Resource, ResourceExt};

use super::super::context::Context;
use crate::Result;
use crate::names::{AUTOMATIC_REVIEWER, CONTROLLER_MANAGER};
use crate::resources::{APIKey, APIProduct, Approval};

/// The approval the controller records for `key`, approved automatically by `product` at `now`.
fn automatic_approval(key: &APIKey, product: &APIProduct, now: Timestamp) -> Approval {
    Approval {
        approved: true,
        reason: Some(format!(
            "APIProduct {}/{} approves keys automatically",
            product.namespace().unwrap_or_default(),
            product.name_any()
        )),
        reviewed_by: Some(AUTOMATIC_REVIEWER.into()),
        reviewed_at: Some(Time(now)),
        product_uid: product.meta().uid.clone(),
        plan_tier: Some(key.spec.plan_tier.clone()),
    }
}

/// Writes the automatic approval into `key`'s `spec.approval`, on the version of the key the
/// reconcile read: if anyone changed the key since (an owner's denial, say), the write fails with
/// a conflict and is dropped, and the reconcile their change triggers decides again.
pub(super) async fn record(key: &APIKey, product: &APIProduct, ctx: &Context) -> Result<()> {
    let api = Api::<APIKey>::namespaced(ctx.client.clone(), &key.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "metadata": {"resourceVersion": key.metadata.resource_version},
        "spec": {"approval": automatic_approval(key, product, Timestamp::now())},
    });
    let params = PatchParams {
        field_manager: Some(CONTROLLER_MANAGER.into()),
        ..PatchParams::default()
    };
    match api
        .patch(&key.name_any(), &params, &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            tracing::debug!(key = %key.name_any(), "key changed before its automatic approval was recorded");
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}
