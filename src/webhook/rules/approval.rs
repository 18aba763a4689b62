//! The webhooks for APIKeyApprovals, and the controller's side door on APIKeys.
//!
//! - [`mutate_approval`]: at CREATE and at every UPDATE of the spec (a new review), stamps
//!   `reviewedBy` (the caller) and `reviewedAt` (now, to the microsecond, after every earlier
//!   review it can see: see [`crate::review_order`]), overwriting what the client sent with a
//!   warning, records what was reviewed (the request's tier and the product's uid, as
//!   annotations) and the review an update replaced (in the previous-reviews annotation), and at
//!   CREATE makes the APIKeyRequest the approval's owner, so the approval goes when the request
//!   goes.
//! - [`validate_approval`]: a CREATE or a new decision only from someone who may `approve` the
//!   product of the referenced request, which must exist; the request reviewed never changes,
//!   and devportal's review annotations change only with a new review.
//! - [`controller_applies`] and [`check_controller_review`]: the controller writes an admitted
//!   approval onto its APIKey's `spec.approval` as its own identity; the reviewer's stamps are
//!   kept, and what it says was reviewed must still be the key's tier and product.

use json_patch::AddOperation;
use json_patch::PatchOperation;
use json_patch::jsonptr::PointerBuf;
use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::{Resource, ResourceExt};

use super::delegation::effective_identity;
use super::re_review::{check_update, claimed, reviewed, written};
use super::{Change, Checked, Limits, Reason, Verdict, lookup_failed};
use crate::names::{
    AUTOMATIC_REVIEWER, GROUP, PREVIOUS_REVIEWS_ANNOTATION, REVIEWED_PRODUCT_UID_ANNOTATION,
    REVIEWED_TIER_ANNOTATION, REVIEWED_VIA_ANNOTATION,
};
use crate::resources::{APIKey, APIKeyApproval, APIKeyPhase, APIKeyRequest};
use crate::review_order;
use crate::webhook::lookup::{Lookup, Read};

fn add(path: &[&str], value: serde_json::Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: PointerBuf::from_tokens(path.iter().copied()),
        value,
    })
}

fn username(user: &UserInfo) -> Option<&str> {
    user.username.as_deref().filter(|u| !u.is_empty())
}

/// The APIKeyRequest `approval` refers to, read live.
async fn request_of<C: Lookup>(
    lookup: &C,
    approval: &APIKeyApproval,
) -> Checked<Option<std::sync::Arc<APIKeyRequest>>> {
    let namespace = approval.namespace().unwrap_or_default();
    let name = &approval.spec.api_key_request_ref.name;
    lookup
        .key_request(&namespace, name)
        .await
        .map_err(|e| lookup_failed(&format!("APIKeyRequest {namespace}/{name}"), e))
}

/// The mutating webhook for APIKeyApprovals, on CREATE and on every UPDATE of the spec (a new
/// review: the console plugin denies an active key by updating its approval): stamps
/// `reviewedBy` and `reviewedAt` (to the microsecond, after every earlier review of the request
/// it can see), records what was reviewed, keeps the replaced review in the
/// [`PREVIOUS_REVIEWS_ANNOTATION`] and, at CREATE, makes the APIKeyRequest the owner.
pub async fn mutate_approval<C: Lookup>(
    lookup: &C,
    change: Change<'_, APIKeyApproval>,
    user: &UserInfo,
    now: Timestamp,
) -> Verdict {
    let (Some((approval, old)), Some(username)) = (written(change), username(user)) else {
        // Nothing to stamp (metadata only, or no username): validation decides.
        return Verdict::allow(Reason::Unchanged);
    };
    // The caller, or the user a trusted front end reviews for (see [`super::delegation`]).
    let identity = match effective_identity(lookup, user, claimed(approval, old, username)).await {
        Ok(identity) => identity,
        Err(e) => return lookup_failed("impersonation permissions (SubjectAccessReview)", e),
    };
    let request = match request_of(lookup, approval).await {
        Ok(request) => request,
        Err(denial) => return denial,
    };
    let at = review_order::stamp(
        now,
        old.and_then(|o| o.spec.reviewed_at.as_ref())
            .into_iter()
            .chain(
                request
                    .as_ref()
                    .and_then(|r| r.status.as_ref()?.reviewed_at.as_ref()),
            )
            .map(|t| t.0),
    );
    let mut verdict = Verdict::allow(Reason::Mutated);
    if let Some(sent) = approval.spec.reviewed_by.as_deref()
        && sent != identity.user
    {
        verdict.warnings.push(format!(
            "spec.reviewedBy {sent:?} was replaced with your username {username:?}: only a front \
             end that may impersonate {sent:?} may review for them"
        ));
    }
    let sent_time = approval
        .spec
        .reviewed_at
        .as_ref()
        .filter(|sent| old.is_none_or(|o| o.spec.reviewed_at.as_ref() != Some(*sent)));
    if sent_time.is_some() {
        verdict.warnings.push(format!(
            "spec.reviewedAt was replaced with the time devportal admitted the review ({})",
            at
        ));
    }
    verdict
        .patch
        .push(add(&["spec", "reviewedBy"], identity.user.clone().into()));
    verdict.patch.push(add(
        &["spec", "reviewedAt"],
        serde_json::to_value(MicroTime(at)).unwrap_or_default(),
    ));
    let Some(request) = request else {
        // No request: validation refuses the approval.
        return verdict;
    };
    let namespace = approval.namespace().unwrap_or_default();
    let product = match lookup
        .product(&namespace, &request.spec.api_product_ref.name, Read::Live)
        .await
    {
        Ok(product) => product,
        Err(e) => return lookup_failed("the reviewed APIProduct", e),
    };
    let mut annotations = approval.annotations().clone();
    match identity.delegated_by {
        Some(front_end) => annotations.insert(REVIEWED_VIA_ANNOTATION.into(), front_end),
        None => annotations.remove(REVIEWED_VIA_ANNOTATION),
    };
    annotations.insert(
        REVIEWED_TIER_ANNOTATION.into(),
        request.spec.plan_tier.clone(),
    );
    match product.and_then(|p| p.meta().uid.clone()) {
        Some(uid) => {
            annotations.insert(REVIEWED_PRODUCT_UID_ANNOTATION.into(), uid);
        }
        None => {
            annotations.remove(REVIEWED_PRODUCT_UID_ANNOTATION);
        }
    }
    match old {
        Some(old) => {
            annotations.insert(
                PREVIOUS_REVIEWS_ANNOTATION.into(),
                old.history_after_update(),
            );
        }
        None => {
            annotations.remove(PREVIOUS_REVIEWS_ANNOTATION);
        }
    }
    verdict.patch.push(add(
        &["metadata", "annotations"],
        serde_json::to_value(annotations).unwrap_or_default(),
    ));
    if old.is_some() {
        return verdict;
    }
    let owner = serde_json::json!({
        "apiVersion": APIKeyRequest::api_version(&()),
        "kind": APIKeyRequest::kind(&()),
        "name": request.name_any(),
        "uid": request.metadata.uid.clone().unwrap_or_default(),
    });
    verdict
        .patch
        .push(if approval.metadata.owner_references.is_none() {
            add(&["metadata", "ownerReferences"], serde_json::json!([owner]))
        } else {
            add(&["metadata", "ownerReferences", "-"], owner)
        });
    verdict
}

/// The validating webhook for APIKeyApprovals.
pub async fn validate_approval<C: Lookup>(
    lookup: &C,
    change: Change<'_, APIKeyApproval>,
    user: &UserInfo,
) -> Verdict {
    match validate_checked(lookup, change, user).await {
        Ok(reason) => Verdict::allow(reason),
        Err(denial) => denial,
    }
}

async fn validate_checked<C: Lookup>(
    lookup: &C,
    change: Change<'_, APIKeyApproval>,
    user: &UserInfo,
) -> Checked<Reason> {
    let (approval, old) = match change {
        Change::Update { old, new } => {
            if let Some(reason) = check_update(old, new)? {
                return Ok(reason);
            }
            (new, Some(old))
        }
        Change::Create(approval) => (approval, None),
    };
    let username = username(user)
        .ok_or_else(|| Verdict::deny(Reason::NoUser, "the request carries no username"))?;
    let namespace = approval.namespace().unwrap_or_default();
    let name = &approval.spec.api_key_request_ref.name;
    let request = request_of(lookup, approval).await?.ok_or_else(|| {
        Verdict::deny(
            Reason::RequestNotFound,
            format!(
                "APIKeyRequest {name:?} not found in namespace {namespace:?}: review a request \
                 listed by `kubectl get apikeyrequests -n {namespace}`"
            ),
        )
    })?;
    // The reviewer: the caller, or the user a trusted front end names (it may impersonate them).
    let identity = effective_identity(lookup, user, claimed(approval, old, username))
        .await
        .map_err(|e| lookup_failed("impersonation permissions (SubjectAccessReview)", e))?;
    if approval.spec.reviewed_by.as_deref() != Some(identity.user.as_str())
        || approval.spec.reviewed_at.is_none()
    {
        return Err(Verdict::deny(
            Reason::ReviewerMismatch,
            format!(
                "spec.reviewedBy must be your own username {username:?} (or a user you may \
                 impersonate) and spec.reviewedAt set; devportal's mutating webhook stamps both"
            ),
        ));
    }
    // A front end reviews with its user's `approve`, which the SubjectAccessReview knows by name.
    let reviewer = match identity.delegated_by {
        Some(_) => UserInfo {
            username: Some(identity.user.clone()),
            groups: Some(vec!["system:authenticated".into()]),
            ..UserInfo::default()
        },
        None => user.clone(),
    };
    let product = &request.spec.api_product_ref.name;
    let may = lookup
        .may_approve(&reviewer, &namespace, product)
        .await
        .map_err(|e| lookup_failed("approval permissions (SubjectAccessReview)", e))?;
    if !may {
        return Err(Verdict::deny(
            Reason::NotApprover,
            format!(
                "user {:?} may not review requests for APIProduct {namespace}/{product}: needs \
                 verb \"approve\" on apiproducts.{GROUP} {product:?} in namespace {namespace:?}",
                identity.user
            ),
        ));
    }
    if let Some(closed) = closed(&request) {
        return Err(closed);
    }
    let [tier, uid, ..] = reviewed(approval);
    if tier != Some(&request.spec.plan_tier) {
        return Err(Verdict::deny(
            Reason::ReviewOutdated,
            format!(
                "the APIKeyRequest now asks for tier {:?}: read it again before reviewing it",
                request.spec.plan_tier
            ),
        ));
    }
    if approval.spec.approved && uid.is_none() {
        return Err(Verdict::deny(
            Reason::ProductNotFound,
            format!(
                "APIProduct {namespace}/{product} not found: an approval binds the product it \
                 approves, so there must be one"
            ),
        ));
    }
    Ok(Reason::Allowed)
}

/// The refusal of a review of `request` when its key has expired: the phase rules put Expired
/// after Denied and before Approved, so a new approval would change nothing and a denial nothing
/// that matters (an expired key is never enforced again). A Failed key is still reviewed: it
/// comes back when its product is fixed, and the review that counts then is the latest.
fn closed(request: &APIKeyRequest) -> Option<Verdict> {
    let status = request.status.as_ref()?;
    (status.phase.as_deref() == Some(APIKeyPhase::Expired.as_str())).then(|| {
        let key = &request.spec.api_key_ref;
        let when = request
            .spec
            .expires_at
            .as_ref()
            .map(|t| format!(" at {}", t.0))
            .unwrap_or_default();
        Verdict::deny(
            Reason::RequestExpired,
            format!(
                "APIKeyRequest {:?} cannot be reviewed: its APIKey {}/{} expired{when}, and an                  expired key is never enforced again; the consumer requests a new key",
                request.name_any(),
                key.namespace,
                key.name
            ),
        )
    })
}

/// Whether `change` is the controller writing an APIKeyApproval onto a key: an UPDATE by the
/// controller's identity that changes `spec.approval` and nothing else of the spec, to a review
/// that is not the record of an automatic approval.
pub fn controller_applies(limits: &Limits, change: &Change<'_, APIKey>, user: &UserInfo) -> bool {
    let Change::Update { old, new } = change else {
        return false;
    };
    if username(user) != Some(limits.controller_username.as_str())
        || limits.controller_username.is_empty()
    {
        return false;
    }
    let mut unchanged = new.spec.clone();
    unchanged.approval = old.spec.approval.clone();
    // The record of an automatic approval has rules of its own (see [`super::automatic`]).
    let automatic = new
        .spec
        .approval
        .as_ref()
        .is_some_and(|a| a.reviewed_by.as_deref() == Some(AUTOMATIC_REVIEWER));
    new.spec.approval.is_some()
        && !automatic
        && new.spec.approval != old.spec.approval
        && unchanged == old.spec
}

/// Checks the controller's write of an approval onto a key (see [`controller_applies`]): the
/// reviewer's stamps are there and kept, and the tier and product it reviewed are still the
/// key's (the product's uid read live). Nothing is patched.
pub async fn check_controller_review<C: Lookup>(lookup: &C, change: Change<'_, APIKey>) -> Verdict {
    let key = change.new_object();
    let Some(review) = key.spec.approval.as_ref() else {
        return Verdict::allow(Reason::Unchanged);
    };
    if review.reviewed_by.as_deref().is_none_or(str::is_empty) || review.reviewed_at.is_none() {
        return Verdict::deny(
            Reason::ReviewerMismatch,
            "the controller applies only reviews with reviewedBy and reviewedAt",
        );
    }
    if review.plan_tier.as_ref() != Some(&key.spec.plan_tier) {
        return Verdict::deny(
            Reason::ReviewOutdated,
            format!(
                "the review is of tier {:?}, and the key asks for {:?}",
                review.plan_tier, key.spec.plan_tier
            ),
        );
    }
    let Some(namespace) = key.product_namespace() else {
        return Verdict::deny(Reason::BadRequest, "the APIKey has no namespace");
    };
    let name = &key.spec.api_product_ref.name;
    let uid = match lookup.product(namespace, name, Read::Live).await {
        Ok(product) => product.and_then(|p| p.metadata.uid.clone()),
        Err(e) => return lookup_failed(&format!("APIProduct {namespace}/{name}"), e),
    };
    if review.approved && (uid.is_none() || review.product_uid != uid) {
        return Verdict::deny(
            Reason::ReviewOutdated,
            format!(
                "the review is of APIProduct uid {:?}, and {namespace}/{name} is now {uid:?}",
                review.product_uid
            ),
        );
    }
    Verdict::allow(Reason::Allowed)
}
