//! An APIKeyApproval's `status`: `observedGeneration` and the `Valid` condition of
//! [`super::standing`], written when they change; a review that stops counting gets an Event
//! once, on the transition (a Warning when it never counted).

use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};

use super::super::context::Context;
use crate::conditions::{Desired, merge};
use crate::names::CONTROLLER_MANAGER;
use crate::names::approval_condition::VALID;
use crate::resources::{APIKeyApproval, APIKeyApprovalStatus};

/// The status `approval` should have with `valid` as its `Valid` condition at `now`, or `None`
/// when its status says so already (for its current generation).
pub(super) fn desired(
    approval: &APIKeyApproval,
    valid: Desired,
    now: Timestamp,
) -> Option<APIKeyApprovalStatus> {
    let generation = approval.metadata.generation;
    let previous = approval
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let current = previous.iter().find(|c| c.type_ == VALID);
    let up_to_date = approval
        .status
        .as_ref()
        .is_some_and(|s| s.observed_generation == generation)
        && current.is_some_and(|c| {
            c.status == if valid.status { "True" } else { "False" }
                && c.reason == valid.reason
                && c.message == valid.message
                && c.observed_generation == generation
        });
    if up_to_date {
        return None;
    }
    Some(APIKeyApprovalStatus {
        observed_generation: generation,
        conditions: merge(previous, vec![valid], generation, now),
    })
}

/// The Event to publish when `approval`'s `Valid` condition becomes `valid`: none while it
/// counts or when it said so already; else a Warning when the review never counted, a Normal
/// Event when a later one took its place.
fn event(approval: &APIKeyApproval, valid: &Desired) -> Option<bool> {
    let stored = approval
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == VALID));
    let same = stored.is_some_and(|c| c.status == "False" && c.reason == valid.reason);
    let counted = stored.is_some_and(|c| c.status == "True")
        && approval.status.as_ref().and_then(|s| s.observed_generation)
            == approval.metadata.generation;
    (!valid.status && !same).then_some(!counted)
}

/// Writes `valid` into `approval`'s status if it is not there yet, with an Event when the review
/// newly does not count. A failed write is logged, not returned: the status is a report, and the
/// key's reconcile (its Secrets) must not wait for it; the next reconcile writes it again.
pub(super) async fn write(approval: &APIKeyApproval, valid: Desired, ctx: &Context) {
    let Some(status) = desired(approval, valid.clone(), Timestamp::now()) else {
        return;
    };
    let api = Api::<APIKeyApproval>::namespaced(
        ctx.client.clone(),
        &approval.namespace().unwrap_or_default(),
    );
    match api
        .patch_status(
            &approval.name_any(),
            &PatchParams {
                field_manager: Some(CONTROLLER_MANAGER.into()),
                ..PatchParams::default()
            },
            &Patch::Merge(serde_json::json!({ "status": status })),
        )
        .await
    {
        Ok(_) => {}
        // Deleted meanwhile: nothing to say.
        Err(kube::Error::Api(status)) if status.code == 404 => return,
        Err(error) => {
            tracing::warn!(
                approval = %format!("{}/{}", approval.namespace().unwrap_or_default(), approval.name_any()),
                %error,
                "could not write the APIKeyApproval's status (does the controller's ClusterRole \
                 have patch on apikeyapprovals/status?)"
            );
            return;
        }
    }
    if let Some(warning) = event(approval, &valid) {
        ctx.publish_event(approval, warning, valid.reason, &valid.message)
            .await;
    }
}
