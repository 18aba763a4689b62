//! Automatic approvals in `spec.approval`: the one the mutating webhook records in a key created
//! for a product in `approvalMode: automatic` ([`check_create`]), and the one change the
//! controller's own identity makes to an APIKey's spec, recording the same for a key created
//! without it (`src/controller/apikey/automatic.rs`, [`check`]). Neither writer holds the
//! `approve` permission, so these rules stand in for the approver check.

use super::{Checked, Reason, Verdict, lookup_failed};
use crate::names::AUTOMATIC_REVIEWER;
use crate::resources::{APIKey, APIKeySpec, Approval, ApprovalMode};
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
    match bound_product(lookup, new, approval, Read::Live).await? {
        Some(why) => Err(deny(&why)),
        None => Ok(Reason::Allowed),
    }
}

/// Checks a CREATE carrying an approval by [`AUTOMATIC_REVIEWER`], which only the mutating
/// webhook records there (it overwrites any reviewer a client sends): it approves the key's tier,
/// bound to the uid of the referenced product, which approves automatically (read from the watch
/// cache; a refusal is confirmed live, so a product switched a moment ago is read as it is).
pub async fn check_create<C: Lookup>(lookup: &C, key: &APIKey) -> Checked {
    let deny = |why: &str| {
        Verdict::deny(
            Reason::NotApprover,
            format!("spec.approval by {AUTOMATIC_REVIEWER} is not what devportal records: {why}"),
        )
    };
    let Some(approval) = key.spec.approval.as_ref().filter(|a| a.approved) else {
        return Err(deny("it does not approve"));
    };
    if approval.plan_tier.as_deref() != Some(key.spec.plan_tier.as_str()) {
        return Err(deny("it does not bind the key's tier"));
    }
    if bound_product(lookup, key, approval, Read::Cached)
        .await?
        .is_none()
    {
        return Ok(());
    }
    match bound_product(lookup, key, approval, Read::Live).await? {
        Some(why) => Err(deny(&why)),
        None => Ok(()),
    }
}

/// Why `approval` does not bind the product `key` references as an automatic approval (read
/// as `read` says), or `None` when it does.
async fn bound_product<C: Lookup>(
    lookup: &C,
    key: &APIKey,
    approval: &Approval,
    read: Read,
) -> Checked<Option<String>> {
    let namespace = key.product_namespace().unwrap_or_default();
    let name = &key.spec.api_product_ref.name;
    let product = lookup
        .product(namespace, name, read)
        .await
        .map_err(|e| lookup_failed(&format!("APIProduct {namespace}/{name}"), e))?;
    Ok(match product {
        None => Some(format!("APIProduct {namespace}/{name} does not exist")),
        Some(p) if p.spec.approval_mode != ApprovalMode::Automatic => Some(format!(
            "APIProduct {namespace}/{name} does not approve keys automatically"
        )),
        Some(p) if approval.product_uid != p.metadata.uid => Some(format!(
            "it does not bind the current APIProduct {namespace}/{name}"
        )),
        Some(_) => None,
    })
}
