//! Re-reviews: an APIKeyApproval whose decision is changed by an UPDATE (the OpenShift console
//! plugin denies an active key so). The pure rules the approval webhooks share: which UPDATEs are
//! new reviews ([`written`]), whom a left-alone `reviewedBy` names ([`claimed`]), and what an
//! UPDATE may change ([`check_update`]): metadata alone, but not devportal's review annotations;
//! a new decision keeps its request, carries the history devportal recorded and a later time.

use kube::ResourceExt;

use super::{Change, Checked, Reason, Verdict};
use crate::names::{
    PREVIOUS_REVIEWS_ANNOTATION, REVIEWED_PRODUCT_UID_ANNOTATION, REVIEWED_TIER_ANNOTATION,
    REVIEWED_VIA_ANNOTATION,
};
use crate::resources::APIKeyApproval;

/// The review `change` writes: the approval on CREATE, or on an UPDATE that changes the spec
/// (a new decision) with the stored one; `None` for an UPDATE of metadata alone.
pub(super) fn written<'a>(
    change: Change<'a, APIKeyApproval>,
) -> Option<(&'a APIKeyApproval, Option<&'a APIKeyApproval>)> {
    match change {
        Change::Create(approval) => Some((approval, None)),
        Change::Update { old, new } if old.spec != new.spec => Some((new, Some(old))),
        Change::Update { .. } => None,
    }
}

/// The reviewer `approval` names for the caller `username` to act for (see
/// [`super::delegation`]). On an UPDATE, a `reviewedBy` left as it was is the earlier review's,
/// not a claim: only the front end that made that review (its `reviewed-via`) re-reviews for the
/// same user; anyone else is recorded as themselves.
pub(super) fn claimed<'a>(
    approval: &'a APIKeyApproval,
    old: Option<&APIKeyApproval>,
    username: &str,
) -> Option<&'a str> {
    let sent = approval.spec.reviewed_by.as_deref();
    match old {
        Some(old)
            if old.spec.reviewed_by.as_deref() == sent
                && old
                    .annotations()
                    .get(REVIEWED_VIA_ANNOTATION)
                    .map(String::as_str)
                    != Some(username) =>
        {
            None
        }
        _ => sent,
    }
}

/// The review annotations of `approval`: the tier and product uid reviewed, the front end, and
/// the reviews updates replaced.
pub(super) type Reviewed<'a> = [Option<&'a String>; 4];

pub(super) fn reviewed(approval: &APIKeyApproval) -> Reviewed<'_> {
    let annotations = approval.annotations();
    [
        REVIEWED_TIER_ANNOTATION,
        REVIEWED_PRODUCT_UID_ANNOTATION,
        REVIEWED_VIA_ANNOTATION,
        PREVIOUS_REVIEWS_ANNOTATION,
    ]
    .map(|name| annotations.get(name))
}

fn immutable(what: &str) -> Verdict {
    Verdict::deny(Reason::ApprovalImmutable, what.to_string())
}

/// Checks an UPDATE of `old` to `new` before the checks of a review: metadata alone may change
/// (not devportal's review annotations); a new decision keeps the request, carries the history
/// devportal recorded and a review time after the one it replaces.
pub(super) fn check_update(old: &APIKeyApproval, new: &APIKeyApproval) -> Checked<Option<Reason>> {
    if old.spec == new.spec {
        if reviewed(old) != reviewed(new) {
            return Err(immutable(
                "the devportal.kuadrant.io/reviewed-* and previous-reviews annotations of an \
                 APIKeyApproval are immutable: they are devportal's record of the review, and \
                 change only with a new review (an update of the spec)",
            ));
        }
        return Ok(Some(Reason::Unchanged));
    }
    if old.spec.api_key_request_ref != new.spec.api_key_request_ref {
        return Err(immutable(
            "spec.apiKeyRequestRef of an APIKeyApproval cannot change: create an APIKeyApproval \
             for the other request",
        ));
    }
    let history = old.history_after_update();
    if new.annotations().get(PREVIOUS_REVIEWS_ANNOTATION) != Some(&history) {
        return Err(immutable(&format!(
            "annotation {PREVIOUS_REVIEWS_ANNOTATION} is devportal's record of the reviews an \
             update replaced; devportal's mutating webhook writes it"
        )));
    }
    let time = |a: &APIKeyApproval| a.spec.reviewed_at.as_ref().map(|t| t.0);
    if time(new) <= time(old) {
        return Err(Verdict::deny(
            Reason::ReviewerMismatch,
            "spec.reviewedAt of a new review must be later than the review it replaces; \
             devportal's mutating webhook stamps it",
        ));
    }
    Ok(None)
}
