//! The one change the controller's own identity makes to an APIKey's spec: recording that a
//! product in `approvalMode: automatic` approved the key (`src/controller/apikey/automatic.rs`).
//! The controller holds no `approve` permission, so this rule stands in for the approver check:
//! it admits exactly that write and nothing else from the controller.

use super::{Checked, Reason, Verdict, lookup_failed};
use crate::names::AUTOMATIC_REVIEWER;
use crate::resources::{APIKey, APIKeySpec, ApprovalMode};
use crate::webhook::lookup::{Lookup, Read};

/// Checks an UPDATE of `old` to `new` by the controller: only `spec.approval` changes; it becomes
/// an approval by [`AUTOMATIC_REVIEWER`] of the key's tier, bound to the uid of the referenced
/// product, which exists and approves automatically (read live); and it replaces no denial.
pub async fn check<C: Lookup>(lookup: &C, old: &APIKey, new: &APIKey) -> Checked<Reason> {
    let deny = |why: &str| {
        Verdict::deny(
            Reason::NotApprover,
            format!(
                "devportal's controller may change an APIKey's spec only to record an automatic \
                 approval: {why}"
            ),
        )
    };
    let without_approval = |spec: &APIKeySpec| APIKeySpec {
        approval: None,
        ..spec.clone()
    };
    if without_approval(&old.spec) != without_approval(&new.spec) {
        return Err(deny("fields other than spec.approval changed"));
    }
    let Some(approval) = &new.spec.approval else {
        return Err(deny("it removed spec.approval"));
    };
    if !approval.approved || approval.reviewed_by.as_deref() != Some(AUTOMATIC_REVIEWER) {
        return Err(deny(&format!(
            "the approval is not an approval by {AUTOMATIC_REVIEWER}"
        )));
    }
    if old.spec.approval.as_ref().is_some_and(|a| !a.approved) {
        return Err(deny("it would replace a denial"));
    }
    if approval.plan_tier.as_deref() != Some(new.spec.plan_tier.as_str()) {
        return Err(deny("it does not bind the key's tier"));
    }
    let namespace = new.product_namespace().unwrap_or_default();
    let name = &new.spec.api_product_ref.name;
    let product = lookup
        .product(namespace, name, Read::Live)
        .await
        .map_err(|e| lookup_failed(&format!("APIProduct {namespace}/{name}"), e))?;
    let Some(product) = product else {
        return Err(deny(&format!(
            "APIProduct {namespace}/{name} does not exist"
        )));
    };
    if product.spec.approval_mode != ApprovalMode::Automatic {
        return Err(deny(&format!(
            "APIProduct {namespace}/{name} does not approve keys automatically"
        )));
    }
    if approval.product_uid != product.metadata.uid {
        return Err(deny(&format!(
            "it does not bind the current APIProduct {namespace}/{name}"
        )));
    }
    Ok(Reason::Allowed)
}
