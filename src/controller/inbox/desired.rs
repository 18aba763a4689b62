//! The owner's inbox as pure functions of an APIKey: the name, spec and status of its
//! APIKeyRequest. Which APIKeyApproval (if any) the key should carry is [`super::standing`]'s.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::conditions::{Desired, merge};
use crate::resources::{
    APIKey, APIKeyPhase, APIKeyRef, APIKeyRequestSpec, APIKeyRequestStatus, ProductNameRef,
};

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
