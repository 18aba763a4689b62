//! Recording an automatic approval: when a product in `approvalMode: automatic` approves a key,
//! the approval goes into the key's `spec.approval` ([`Approval::automatic`]), so the grant
//! outlives the mode: a product switched to manual keeps the keys it already approved, and only
//! new requests wait for review. The mutating webhook records it at CREATE, inside the
//! consumer's own request; this is the controller's fallback for a key it did not stamp (one
//! created while the product was manual, then switched to automatic). The admission webhook lets
//! the controller's identity write exactly this (`src/webhook/rules/automatic.rs`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::{Resource, ResourceExt};

use super::super::context::Context;
use crate::Result;
use crate::names::CONTROLLER_MANAGER;
use crate::resources::{APIKey, APIProduct, Approval};

/// Writes the automatic approval into `key`'s `spec.approval`, on the version of the key the
/// reconcile read: if anyone changed the key since (an owner's denial, say), the write fails with
/// a conflict and is dropped, and the reconcile their change triggers decides again.
pub(super) async fn record(key: &APIKey, product: &APIProduct, ctx: &Context) -> Result<()> {
    let api = Api::<APIKey>::namespaced(ctx.client.clone(), &key.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "metadata": {"resourceVersion": key.metadata.resource_version},
        "spec": {"approval": Approval::automatic(
            &product.namespace().unwrap_or_default(),
            &product.name_any(),
            product.meta().uid.clone(),
            &key.spec.plan_tier,
            MicroTime(crate::review_order::truncate(Timestamp::now())),
        )},
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
