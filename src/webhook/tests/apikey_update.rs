//! The validating webhook on APIKey UPDATE (and an approval smuggled into a CREATE): who may
//! approve and whom the approval must name, the immutable requester, which fields change only while
//! Pending and by whom, and metadata-only changes.

use serde_json::json;

use super::{allowed, approve, denied, key, review, user};
use crate::names::{FINALIZER, GROUP};
use crate::webhook::review::Endpoint;
use crate::webhook::rules::Reason;

#[tokio::test]
async fn only_owners_and_admins_approve() {
    let old = key("toys", "gold", Some("consumer"));
    let self_approved = approve(old.clone(), "consumer");
    let body = review("UPDATE", user("consumer"), self_approved, Some(old.clone()));
    denied(
        Endpoint::ValidateKeys,
        &body,
        Reason::NotApprover,
        403,
        &format!(
            "user \"consumer\" may not approve keys for APIProduct apps/toys: needs verb \"approve\" on apiproducts.{GROUP} \"toys\" in namespace \"apps\""
        ),
    )
    .await;

    allowed(
        Endpoint::ValidateKeys,
        &review(
            "UPDATE",
            user("owner"),
            approve(old.clone(), "owner"),
            Some(old.clone()),
        ),
    )
    .await;
    allowed(
        Endpoint::ValidateKeys,
        &review(
            "UPDATE",
            user("admin"),
            approve(old.clone(), "admin"),
            Some(old),
        ),
    )
    .await;

    // The owner of toys does not own other.
    let other = key("other", "gold", Some("consumer"));
    let body = review(
        "UPDATE",
        user("owner"),
        approve(other.clone(), "owner"),
        Some(other),
    );
    denied(
        Endpoint::ValidateKeys,
        &body,
        Reason::NotApprover,
        403,
        "may not approve keys for APIProduct apps/other",
    )
    .await;

    // A consumer cannot smuggle an approval into a CREATE either.
    let body = review(
        "CREATE",
        user("consumer"),
        approve(key("toys", "gold", Some("consumer")), "consumer"),
        None,
    );
    denied(
        Endpoint::ValidateKeys,
        &body,
        Reason::NotApprover,
        403,
        "needs verb \"approve\"",
    )
    .await;

    // Removing an approval is a review decision too.
    let approved = approve(key("toys", "gold", Some("consumer")), "owner");
    let body = review(
        "UPDATE",
        user("consumer"),
        key("toys", "gold", Some("consumer")),
        Some(approved),
    );
    denied(
        Endpoint::ValidateKeys,
        &body,
        Reason::NotApprover,
        403,
        "may not approve",
    )
    .await;
}

#[tokio::test]
async fn the_reviewer_recorded_must_be_the_user() {
    let old = key("toys", "gold", Some("consumer"));
    let body = review(
        "UPDATE",
        user("owner"),
        approve(old.clone(), "admin"),
        Some(old),
    );
    denied(
        Endpoint::ValidateKeys,
        &body,
        Reason::ReviewerMismatch,
        403,
        "reviewedBy must be the reviewer's own username \"owner\"",
    )
    .await;
}

#[tokio::test]
async fn requested_by_is_immutable() {
    let old = key("toys", "gold", Some("consumer"));
    let new = key("toys", "gold", Some("consumer2"));
    let body = review("UPDATE", user("admin"), new, Some(old));
    denied(
        Endpoint::ValidateKeys,
        &body,
        Reason::RequestedByImmutable,
        422,
        "spec.requestedBy is immutable",
    )
    .await;
}

#[tokio::test]
async fn only_the_requester_edits_and_only_while_pending() {
    let old = key("toys", "gold", Some("consumer"));
    let mut new = old.clone();
    new["spec"]["planTier"] = json!("silver");
    new["spec"]["useCase"] = json!("more testing");
    allowed(
        Endpoint::ValidateKeys,
        &review("UPDATE", user("consumer"), new.clone(), Some(old.clone())),
    )
    .await;
    allowed(
        Endpoint::ValidateKeys,
        &review("UPDATE", user("admin"), new.clone(), Some(old.clone())),
    )
    .await;
    denied(
        Endpoint::ValidateKeys,
        &review("UPDATE", user("consumer2"), new.clone(), Some(old.clone())),
        Reason::NotRequester,
        403,
        "only the requester \"consumer\" or an API admin may change spec.planTier, spec.useCase",
    )
    .await;
    // An owner reviews the request (spec.approval) and does not rewrite it: not the tier...
    denied(
        Endpoint::ValidateKeys,
        &review("UPDATE", user("owner"), new.clone(), Some(old.clone())),
        Reason::NotRequester,
        403,
        "a reviewer may change only spec.approval",
    )
    .await;
    // ...nor the product, not even to another product they own, and not with an approval.
    let mut retargeted = approve(old.clone(), "owner");
    retargeted["spec"]["apiProductRef"]["name"] = json!("draft");
    denied(
        Endpoint::ValidateKeys,
        &review("UPDATE", user("owner"), retargeted, Some(old.clone())),
        Reason::NotRequester,
        403,
        "may change spec.apiProductRef",
    )
    .await;

    // Once approved (in spec or in status) the request is settled.
    let approved = approve(old.clone(), "owner");
    let mut retiered = approved.clone();
    retiered["spec"]["planTier"] = json!("silver");
    denied(
        Endpoint::ValidateKeys,
        &review("UPDATE", user("consumer"), retiered, Some(approved)),
        Reason::NotPending,
        422,
        "spec.planTier may change only while the key is Pending, and this key is approved",
    )
    .await;
    let mut active = old.clone();
    active["status"] = json!({"phase": "Approved"});
    let mut retiered = active.clone();
    retiered["spec"]["planTier"] = json!("silver");
    denied(
        Endpoint::ValidateKeys,
        &review("UPDATE", user("admin"), retiered, Some(active)),
        Reason::NotPending,
        422,
        "this key is Approved",
    )
    .await;

    // A new tier must exist.
    let mut new = old.clone();
    new["spec"]["planTier"] = json!("platinum");
    denied(
        Endpoint::ValidateKeys,
        &review("UPDATE", user("consumer"), new, Some(old)),
        Reason::UnknownTier,
        422,
        "choose one of",
    )
    .await;
}

#[tokio::test]
async fn metadata_only_changes_always_pass() {
    // Even on a settled key whose product is gone, by a user with no stake in it.
    let mut old = approve(key("vanished", "gold", Some("consumer")), "owner");
    old["status"] = json!({"phase": "Failed"});
    let mut new = old.clone();
    new["metadata"]["labels"] = json!({"team": "blue"});
    new["metadata"]["finalizers"] = json!([FINALIZER]);
    let response = allowed(
        Endpoint::ValidateKeys,
        &review("UPDATE", user("controller"), new.clone(), Some(old.clone())),
    )
    .await;
    assert!(response.get("patch").is_none());
    let response = allowed(
        Endpoint::MutateKeys,
        &review("UPDATE", user("controller"), new, Some(old)),
    )
    .await;
    assert!(
        response.get("patch").is_none(),
        "the mutating webhook stamps nothing"
    );
}
