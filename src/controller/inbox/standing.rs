//! Which review of a request counts, as pure functions: the latest of its APIKeyApprovals
//! ([`latest`]), whether the key should take it ([`decide`]), and what every APIKeyApproval's
//! `Valid` condition says ([`standing`]). The order is [`crate::review_order`]'s: strict, a
//! denial winning a tie, a withdrawal of the key's review superseding everything before it.

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::conditions::Desired;
use crate::names::approval_condition::VALID;
use crate::names::approval_reason::{APPLIED, KEY_EXPIRED, OUTDATED, SUPERSEDED};
use crate::names::{
    REVIEW_WITHDRAWN_ANNOTATION, REVIEWED_PRODUCT_UID_ANNOTATION, REVIEWED_TIER_ANNOTATION,
};
use crate::resources::{APIKey, APIKeyApproval, Approval};
use crate::review_order::{Against, Rank, against};

/// Longest `reason` an APIKey's `spec.approval` holds (its schema's maxLength).
const REASON_MAX_CHARS: usize = 1024;

/// The rank of `approval`'s review, if it was stamped (the webhook stamps every one).
fn rank_of(approval: &APIKeyApproval) -> Option<Rank> {
    let at = approval.spec.reviewed_at.as_ref()?;
    Some(Rank::new(at.0, approval.spec.approved))
}

/// The latest of `approvals` (all of one request) in the strict order: by review time, a denial
/// after an approval of the same time, then by creation time and name (unique). Approvals
/// without `reviewedAt` do not count.
pub fn latest<'a>(
    approvals: impl IntoIterator<Item = &'a APIKeyApproval>,
) -> Option<&'a APIKeyApproval> {
    approvals
        .into_iter()
        .filter_map(|a| Some((rank_of(a)?, a)))
        .max_by_key(|(rank, a)| {
            (
                *rank,
                a.metadata.creation_timestamp.as_ref().map(|t| t.0),
                a.name_any(),
            )
        })
        .map(|(_, a)| a)
}

/// When someone who may approve last cleared `key`'s review, as the webhook recorded it.
pub fn withdrawn_at(key: &APIKey) -> Option<Timestamp> {
    key.annotations()
        .get(REVIEW_WITHDRAWN_ANNOTATION)?
        .parse()
        .ok()
}

/// What to do with a request's latest APIKeyApproval.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// The key carries this review: it counts.
    Carried,
    /// Write this review into the key's `spec.approval`: it is the latest.
    Write(Approval),
    /// A later review counts instead; why.
    Superseded(String),
    /// The approval reviewed another tier or another product than the key's now; why.
    Outdated(String),
    /// The latest review would be written, but the key expired at this time: it is not.
    KeyExpired(Timestamp),
}

fn verdict_word(approved: bool) -> &'static str {
    if approved { "approved" } else { "denied" }
}

/// Whether `approval` should become `key`'s `spec.approval`, with `product_uid` the uid of the
/// key's product as it is now.
pub fn decide(key: &APIKey, approval: &APIKeyApproval, product_uid: Option<&str>) -> Decision {
    let Some(rank) = rank_of(approval) else {
        return Decision::Superseded(
            "it has no reviewedAt (devportal's webhook stamps every review)".into(),
        );
    };
    if carries(key, approval) {
        return Decision::Carried;
    }
    let carried = key.spec.approval.as_ref();
    let carried_rank = carried.and_then(|a| Some(Rank::new(a.reviewed_at.as_ref()?.0, a.approved)));
    let withdrawn = withdrawn_at(key);
    match against(rank, carried_rank, withdrawn) {
        Against::Later => {}
        Against::OlderThanKeysReview => {
            let review = carried.expect("a rank comes from a review");
            return Decision::Superseded(format!(
                "the review written on APIKey {}/{} ({} by {} at {}) is later",
                key.namespace().unwrap_or_default(),
                key.name_any(),
                verdict_word(review.approved),
                review.reviewed_by.as_deref().unwrap_or("a reviewer"),
                review.reviewed_at.as_ref().map(|t| t.0).unwrap_or(rank.at),
            ));
        }
        Against::Withdrawn => {
            return Decision::Superseded(format!(
                "the review of APIKey {}/{} was withdrawn at {} (spec.approval cleared), after \
                 this review; review the request again to decide",
                key.namespace().unwrap_or_default(),
                key.name_any(),
                withdrawn.unwrap_or(rank.at),
            ));
        }
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
        reviewed_at: approval.spec.reviewed_at.clone(),
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

/// The `Valid` condition of `approval`, one of a request's APIKeyApprovals whose latest is
/// `latest` (with `decision` on it): True while it is the review that counts (carried, or being
/// written), False with the reason otherwise.
pub fn standing(
    approval: &APIKeyApproval,
    latest: &APIKeyApproval,
    decision: &Decision,
) -> Desired {
    if approval.uid() != latest.uid() || approval.name_any() != latest.name_any() {
        return Desired::fails(
            VALID,
            SUPERSEDED,
            format!(
                "does not count: APIKeyApproval {} ({} by {} at {}) is the later review of request {}",
                latest.name_any(),
                verdict_word(latest.spec.approved),
                latest.spec.reviewed_by.as_deref().unwrap_or("a reviewer"),
                latest
                    .spec
                    .reviewed_at
                    .as_ref()
                    .map(|t| t.0.to_string())
                    .unwrap_or_default(),
                latest.spec.api_key_request_ref.name,
            ),
        );
    }
    match decision {
        Decision::Carried | Decision::Write(_) => Desired::holds(
            VALID,
            APPLIED,
            format!(
                "this review counts: the key is {} by it",
                verdict_word(approval.spec.approved)
            ),
        ),
        Decision::Superseded(why) => {
            Desired::fails(VALID, SUPERSEDED, format!("does not count: {why}"))
        }
        Decision::Outdated(why) => Desired::fails(
            VALID,
            OUTDATED,
            format!("not applied: {why}; review the request again"),
        ),
        Decision::KeyExpired(at) => Desired::fails(
            VALID,
            KEY_EXPIRED,
            format!(
                "not applied: the key expired at {at}, and an expired key is never enforced \
                 again; the consumer requests a new key"
            ),
        ),
    }
}

/// `decision` for a key that expires at `expiry`: a review to write is not written once the key
/// has expired at `now` (it would change nothing the gateway sees, and say it did).
pub fn unless_expired(decision: Decision, expiry: Option<Timestamp>, now: Timestamp) -> Decision {
    match (decision, expiry) {
        (Decision::Write(_), Some(at)) if at <= now => Decision::KeyExpired(at),
        (decision, _) => decision,
    }
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
