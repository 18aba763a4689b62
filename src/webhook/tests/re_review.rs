//! Re-reviews: an APIKeyApproval's decision changed by an UPDATE, as the OpenShift console plugin
//! denies an active key, only by someone who may `approve` the product, re-stamped, with the
//! replaced review kept; the request reviewed and devportal's record never change. And the
//! record of a key's review being withdrawn.

use serde_json::{Value, json};

use super::approval::stamped;
use super::{allowed, approve, cluster, denied, key, limits, patched, review, send, user};
use crate::names::{
    PREVIOUS_REVIEWS_ANNOTATION, REVIEW_WITHDRAWN_ANNOTATION, REVIEWED_PRODUCT_UID_ANNOTATION,
    REVIEWED_TIER_ANNOTATION, REVIEWED_VIA_ANNOTATION,
};
use crate::webhook::review::{Endpoint, Webhook};
use crate::webhook::rules::Reason;

/// `old` changed as the OpenShift console plugin denies an active key: the whole object sent back
/// with a new spec (`handleAPIKeyApprovalOrDenial`).
fn console_denial(old: &Value) -> Value {
    let mut denied = old.clone();
    denied["spec"] = json!({
        "apiKeyRequestRef": old["spec"]["apiKeyRequestRef"], "approved": false,
        "reviewedBy": "owner", "reviewedAt": "2026-06-01T11:59:59.123Z",
        "reason": "DeniedByOwner", "message": "Denied"
    });
    denied
}

#[tokio::test]
async fn an_approver_re_reviews_by_updating_and_the_earlier_review_is_kept() {
    let old = stamped("owner", true).await;
    let new = console_denial(&old);
    let response = allowed(
        Endpoint::MutateApprovals,
        &review("UPDATE", user("owner"), new.clone(), Some(old.clone())),
    )
    .await;
    let warnings = response["warnings"].to_string();
    assert!(
        warnings.contains("spec.reviewedAt was replaced"),
        "{warnings}"
    );
    let restamped = patched(&response, &new);
    assert_eq!(restamped["spec"]["reviewedBy"], "owner");
    // Admitted in the same instant as the approval, and still strictly after it.
    assert_eq!(
        restamped["spec"]["reviewedAt"],
        "2026-06-01T12:00:00.000001Z"
    );
    let annotations = &restamped["metadata"]["annotations"];
    assert_eq!(annotations[REVIEWED_TIER_ANNOTATION], "gold");
    assert_eq!(annotations[REVIEWED_PRODUCT_UID_ANNOTATION], "p-1");
    let history: Value =
        serde_json::from_str(annotations[PREVIOUS_REVIEWS_ANNOTATION].as_str().unwrap()).unwrap();
    assert_eq!(
        history,
        json!([{"approved": true, "reviewedBy": "owner",
                "reviewedAt": "2026-06-01T12:00:00.000000Z", "reason": "ok"}])
    );
    assert_eq!(
        restamped["metadata"]["ownerReferences"], old["metadata"]["ownerReferences"],
        "the owner reference is left as it is"
    );
    allowed(
        Endpoint::ValidateApprovals,
        &review("UPDATE", user("owner"), restamped, Some(old)),
    )
    .await;
}

#[tokio::test]
async fn someone_who_may_not_approve_cannot_update_an_approval() {
    let old = stamped("owner", true).await;
    let new = console_denial(&old);
    let response = allowed(
        Endpoint::MutateApprovals,
        &review("UPDATE", user("consumer"), new.clone(), Some(old.clone())),
    )
    .await;
    let restamped = patched(&response, &new);
    assert_eq!(restamped["spec"]["reviewedBy"], "consumer");
    denied(
        Endpoint::ValidateApprovals,
        &review("UPDATE", user("consumer"), restamped, Some(old)),
        Reason::NotApprover,
        403,
        "user \"consumer\" may not review requests for APIProduct apps/toys",
    )
    .await;
}

#[tokio::test]
async fn an_approvals_request_and_devportals_record_do_not_change() {
    let old = stamped("owner", true).await;
    let mut elsewhere = console_denial(&old);
    elsewhere["spec"]["apiKeyRequestRef"]["name"] = json!("theirs-00000000");
    let response = allowed(
        Endpoint::MutateApprovals,
        &review(
            "UPDATE",
            user("owner"),
            elsewhere.clone(),
            Some(old.clone()),
        ),
    )
    .await;
    denied(
        Endpoint::ValidateApprovals,
        &review(
            "UPDATE",
            user("owner"),
            patched(&response, &elsewhere),
            Some(old.clone()),
        ),
        Reason::ApprovalImmutable,
        422,
        "spec.apiKeyRequestRef of an APIKeyApproval cannot change",
    )
    .await;
    let mut retiered = old.clone();
    retiered["metadata"]["annotations"][REVIEWED_TIER_ANNOTATION] = json!("silver");
    denied(
        Endpoint::ValidateApprovals,
        &review("UPDATE", user("admin"), retiered, Some(old.clone())),
        Reason::ApprovalImmutable,
        422,
        "devportal's record of the review",
    )
    .await;
    let mut rewritten = old.clone();
    rewritten["metadata"]["annotations"][PREVIOUS_REVIEWS_ANNOTATION] = json!("[]");
    denied(
        Endpoint::ValidateApprovals,
        &review("UPDATE", user("owner"), rewritten, Some(old.clone())),
        Reason::ApprovalImmutable,
        422,
        "devportal's record of the review",
    )
    .await;
    // A new review whose history skipped the mutating webhook.
    let mut unrecorded = console_denial(&old);
    unrecorded["spec"]["reviewedAt"] = json!("2026-06-01T12:00:01Z");
    denied(
        Endpoint::ValidateApprovals,
        &review("UPDATE", user("owner"), unrecorded, Some(old.clone())),
        Reason::ApprovalImmutable,
        422,
        PREVIOUS_REVIEWS_ANNOTATION,
    )
    .await;
    let mut labelled = old.clone();
    labelled["metadata"]["labels"] = json!({"team": "a"});
    allowed(
        Endpoint::ValidateApprovals,
        &review("UPDATE", user("owner"), labelled, Some(old)),
    )
    .await;
}

#[tokio::test]
async fn clearing_a_keys_review_is_recorded_and_only_devportal_records_it() {
    let old = approve(key("toys", "gold", Some("consumer")), "owner");
    let mut cleared = old.clone();
    cleared["spec"].as_object_mut().unwrap().remove("approval");
    let response = allowed(
        Endpoint::MutateKeys,
        &review("UPDATE", user("owner"), cleared.clone(), Some(old.clone())),
    )
    .await;
    let recorded = patched(&response, &cleared);
    // Strictly after the review it withdrew, stamped in the same instant.
    assert_eq!(
        recorded["metadata"]["annotations"][REVIEW_WITHDRAWN_ANNOTATION],
        "2026-06-01T12:00:00.000001Z"
    );
    allowed(
        Endpoint::ValidateKeys,
        &review("UPDATE", user("owner"), recorded.clone(), Some(old)),
    )
    .await;
    // The requester removing the record: restored, with a warning.
    let mut erased = recorded.clone();
    erased["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove(REVIEW_WITHDRAWN_ANNOTATION);
    let response = allowed(
        Endpoint::MutateKeys,
        &review(
            "UPDATE",
            user("consumer"),
            erased.clone(),
            Some(recorded.clone()),
        ),
    )
    .await;
    assert!(response["warnings"].to_string().contains("was restored"));
    assert_eq!(
        patched(&response, &erased)["metadata"]["annotations"][REVIEW_WITHDRAWN_ANNOTATION],
        recorded["metadata"]["annotations"][REVIEW_WITHDRAWN_ANNOTATION]
    );
    // ...and refused if the write skipped the mutating webhook.
    denied(
        Endpoint::ValidateKeys,
        &review("UPDATE", user("consumer"), erased, Some(recorded)),
        Reason::GuardedMetadata,
        403,
        REVIEW_WITHDRAWN_ANNOTATION,
    )
    .await;
}

#[tokio::test]
async fn an_update_leaving_the_reviewer_as_it_was_is_the_updaters_review() {
    // The admin may impersonate the owner; a merge patch keeps the owner's reviewedBy.
    let webhook = Webhook::new(cluster().with_impersonator("admin", "owner"), limits());
    let old = stamped("owner", true).await;
    let mut flipped = old.clone();
    flipped["spec"]["approved"] = json!(false);
    let (_, response) = send(
        &webhook,
        Endpoint::MutateApprovals,
        &review("UPDATE", user("admin"), flipped.clone(), Some(old.clone())),
    )
    .await;
    let restamped = patched(&response, &flipped);
    assert_eq!(restamped["spec"]["reviewedBy"], "admin");
    assert!(
        restamped["metadata"]["annotations"]
            .get(REVIEWED_VIA_ANNOTATION)
            .is_none()
    );
    let (reply, _) = send(
        &webhook,
        Endpoint::ValidateApprovals,
        &review("UPDATE", user("admin"), restamped, Some(old)),
    )
    .await;
    assert_eq!(reply.outcome.reason, Reason::Allowed);
}
