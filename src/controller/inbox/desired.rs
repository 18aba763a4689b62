//! The owner's inbox as pure functions of an APIKey: the name, spec and status of its
//! APIKeyRequest, and which APIKeyApproval (if any) the key should carry.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::conditions::{Desired, merge};
use crate::names::{REVIEWED_PRODUCT_UID_ANNOTATION, REVIEWED_TIER_ANNOTATION};
use crate::resources::{
    APIKey, APIKeyApproval, APIKeyPhase, APIKeyRef, APIKeyRequestSpec, APIKeyRequestStatus,
    Approval, ProductNameRef,
};

/// Longest `reason` an APIKey's `spec.approval` holds (its schema's maxLength).
const REASON_MAX_CHARS: usize = 1024;

/// The APIKeyRequest's name for `key`: `<key name>-<crc32 of the key's uid, 8 hex digits>`, the
/// name cut so the whole fits 253 characters. Keys of the same name in different namespaces (and
/// a key re-created under its old name) get different requests.
pub fn request_name(key: &APIKey) -> String {
    let uid = key.metadata.uid.as_deref().unwrap_or_default();
    let suffix = format!("{:08x}", crc32fast::hash(uid.as_bytes()));
    let name = key.name_any();
    let cut: String = name.chars().take(253 - 1 - suffix.len()).collect();
    format!("{}-{suffix}", cut.trim_end_matches(['-', '.']))
}

/// The request phase of a key phase: the key's own word (`Denied` for a refused key, as upstream
/// and the plugin say).
pub fn request_phase(phase: APIKeyPhase) -> &'static str {
    phase.as_str()
}

/// The request's spec: the key's request, as the owner reads it.
pub fn request_spec(key: &APIKey) -> APIKeyRequestSpec {
    APIKeyRequestSpec {
        api_product_ref: ProductNameRef {
            name: key.spec.api_product_ref.name.clone(),
        },
        plan_tier: key.spec.plan_tier.clone(),
        use_case: key.spec.use_case.clone(),
        requested_by: key.spec.requested_by.clone(),
        api_key_ref: APIKeyRef {
            name: key.name_any(),
            namespace: key.namespace().unwrap_or_default(),
        },
        expires_at: key.spec.expires_at.clone(),
    }
}

/// The request's status: the key's phase as one condition per phase (exactly one True, the
/// others False, as the plugin reads `Approved` then `Denied`), and the review the key carries.
/// `applied` names the APIKeyApproval that review came from, if it came from one.
pub fn request_status(
    key: &APIKey,
    phase: APIKeyPhase,
    message: &str,
    applied: Option<String>,
    previous: &[Condition],
    now: Timestamp,
) -> APIKeyRequestStatus {
    let current = request_phase(phase);
    let conditions = APIKeyPhase::ALL
        .iter()
        .map(|phase| phase.as_str())
        .map(|p| {
            if p == current {
                Desired::holds(p, p, message)
            } else {
                Desired::fails(p, "NotInPhase", format!("the request is {current}"))
            }
        })
        .collect();
    let review = key.spec.approval.as_ref();
    APIKeyRequestStatus {
        phase: Some(current.to_string()),
        conditions: merge(previous, conditions, None, now),
        approved: review.map(|a| a.approved),
        reviewed_by: review.and_then(|a| a.reviewed_by.clone()),
        reviewed_at: review.and_then(|a| a.reviewed_at.clone()),
        reason: review.and_then(|a| a.reason.clone()),
        approval_name: applied,
    }
}

/// The latest of `approvals` (all of one request): by `reviewedAt`, then creation time, then
/// name. Approvals without `reviewedAt` (the webhook always stamps it) do not count.
pub fn latest<'a>(
    approvals: impl IntoIterator<Item = &'a APIKeyApproval>,
) -> Option<&'a APIKeyApproval> {
    approvals
        .into_iter()
        .filter(|a| a.spec.reviewed_at.is_some())
        .max_by_key(|a| {
            (
                a.spec.reviewed_at.as_ref().map(|t| t.0),
                a.metadata.creation_timestamp.as_ref().map(|t| t.0),
                a.name_any(),
            )
        })
}

/// What to do with a request's latest APIKeyApproval.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// The key already carries this review, or a later one (the latest review wins, whichever
    /// way it came).
    Nothing,
    /// Write this review into the key's `spec.approval`.
    Write(Approval),
    /// The approval reviewed another tier or another product than the key's now; why.
    Outdated(String),
}

/// Whether `approval` should become `key`'s `spec.approval`, with `product_uid` the uid of the
/// key's product as it is now.
pub fn decide(key: &APIKey, approval: &APIKeyApproval, product_uid: Option<&str>) -> Decision {
    let Some(reviewed_at) = approval.spec.reviewed_at.as_ref() else {
        return Decision::Nothing;
    };
    if let Some(carried) = key.spec.approval.as_ref()
        && carried
            .reviewed_at
            .as_ref()
            .is_some_and(|t| t.0 >= reviewed_at.0)
    {
        return Decision::Nothing;
    }
    let annotations = approval.annotations();
    let tier = annotations.get(REVIEWED_TIER_ANNOTATION);
    let uid = annotations.get(REVIEWED_PRODUCT_UID_ANNOTATION);
    if tier != Some(&key.spec.plan_tier) {
        return Decision::Outdated(format!(
            "APIKeyApproval {} reviewed tier {:?}, and the key asks for tier {:?}",
            approval.name_any(),
            tier.map_or("", String::as_str),
            key.spec.plan_tier
        ));
    }
    if uid.map(String::as_str) != product_uid {
        return Decision::Outdated(format!(
            "APIKeyApproval {} reviewed another APIProduct of this name (uid {}), not the current \
             one (uid {})",
            approval.name_any(),
            uid.map_or("none", String::as_str),
            product_uid.unwrap_or("none")
        ));
    }
    Decision::Write(Approval {
        approved: approval.spec.approved,
        reason: reason_of(approval),
        reviewed_by: approval.spec.reviewed_by.clone(),
        reviewed_at: Some(reviewed_at.clone()),
        product_uid: uid.cloned(),
        plan_tier: tier.cloned(),
    })
}

/// Whether `key` carries the review of `approval` (as [`decide`] writes it).
pub fn carries(key: &APIKey, approval: &APIKeyApproval) -> bool {
    key.spec.approval.as_ref().is_some_and(|a| {
        a.approved == approval.spec.approved
            && a.reviewed_by == approval.spec.reviewed_by
            && a.reviewed_at.is_some()
            && a.reviewed_at == approval.spec.reviewed_at
    })
}

/// The approval's `reason` and `message` as one reason: `reason: message`, either alone, or
/// none; cut to what `spec.approval.reason` holds.
fn reason_of(approval: &APIKeyApproval) -> Option<String> {
    let reason = approval.spec.reason.as_deref().filter(|r| !r.is_empty());
    let message = approval.spec.message.as_deref().filter(|m| !m.is_empty());
    let joined = match (reason, message) {
        (Some(r), Some(m)) => format!("{r}: {m}"),
        (Some(one), None) | (None, Some(one)) => one.to_string(),
        (None, None) => return None,
    };
    Some(joined.chars().take(REASON_MAX_CHARS).collect())
}
