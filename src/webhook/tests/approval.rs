//! APIKeyApprovals: the reviewer and what was reviewed are stamped, only those who may `approve`
//! the request's product may create or re-review one (by an update, as the console plugin does),
//! a missing request is refused, and the request reviewed and devportal's record never change.
//! And the controller's write of an approval onto its APIKey.

use serde_json::{Value, json};

use super::{
    UID, allowed, approve, cluster, denied, key, limits, patched, review, send, user, webhook,
};
use crate::names::{
    API_VERSION, PREVIOUS_REVIEWS_ANNOTATION, REVIEW_WITHDRAWN_ANNOTATION,
    REVIEWED_PRODUCT_UID_ANNOTATION, REVIEWED_TIER_ANNOTATION, REVIEWED_VIA_ANNOTATION,
};
use crate::webhook::review::{Endpoint, Webhook};
use crate::webhook::rules::Reason;

fn approval(request: &str, approved: bool) -> Value {
    json!({
        "apiVersion": API_VERSION, "kind": "APIKeyApproval",
        "metadata": {"name": format!("{request}-approval-0a1b2c3d"), "namespace": "apps"},
        "spec": {"apiKeyRequestRef": {"name": request}, "approved": approved,
                 "reviewedBy": "user:default/mallory", "reviewedAt": "2020-01-01T00:00:00Z",
                 "reason": "ok"}
    })
}

/// The approval as the mutating webhook leaves it, created by `who`.
async fn stamped(who: &str, approved: bool) -> Value {
    let object = approval("mine-1234abcd", approved);
    let body = review("CREATE", user(who), object.clone(), None);
    let response = allowed(Endpoint::MutateApprovals, &body).await;
    patched(&response, &object)
}

#[tokio::test]
async fn the_reviewer_and_what_was_reviewed_are_stamped_over_the_clients_values() {
    let object = approval("mine-1234abcd", true);
    let body = review("CREATE", user("owner"), object.clone(), None);
    let response = allowed(Endpoint::MutateApprovals, &body).await;
    let warnings = response["warnings"].to_string();
    assert!(warnings.contains("user:default/mallory"), "{warnings}");
    let stamped = patched(&response, &object);
    assert_eq!(stamped["spec"]["reviewedBy"], "owner");
    assert_eq!(stamped["spec"]["reviewedAt"], "2026-06-01T12:00:00.000000Z");
    let annotations = &stamped["metadata"]["annotations"];
    assert_eq!(annotations[REVIEWED_TIER_ANNOTATION], "gold");
    assert_eq!(annotations[REVIEWED_PRODUCT_UID_ANNOTATION], "p-1");
    assert_eq!(
        stamped["metadata"]["ownerReferences"],
        json!([{"apiVersion": API_VERSION, "kind": "APIKeyRequest",
                "name": "mine-1234abcd", "uid": "r-1"}])
    );
}

#[tokio::test]
async fn an_owner_of_the_requests_product_may_review_it() {
    for approved in [true, false] {
        let object = stamped("owner", approved).await;
        allowed(
            Endpoint::ValidateApprovals,
            &review("CREATE", user("owner"), object, None),
        )
        .await;
    }
    let by_admin = stamped("admin", true).await;
    allowed(
        Endpoint::ValidateApprovals,
        &review("CREATE", user("admin"), by_admin, None),
    )
    .await;
}

#[tokio::test]
async fn someone_who_may_not_approve_the_product_cannot_review() {
    let object = stamped("consumer", true).await;
    denied(
        Endpoint::ValidateApprovals,
        &review("CREATE", user("consumer"), object, None),
        Reason::NotApprover,
        403,
        "may not review requests for APIProduct apps/toys",
    )
    .await;
}

#[tokio::test]
async fn a_forged_reviewer_that_skipped_the_stamps_is_refused() {
    // As if the mutating webhook had not run: the client's own reviewedBy.
    let object = approval("mine-1234abcd", true);
    denied(
        Endpoint::ValidateApprovals,
        &review("CREATE", user("owner"), object, None),
        Reason::ReviewerMismatch,
        403,
        "your own username \"owner\"",
    )
    .await;
}

#[tokio::test]
async fn a_review_of_a_missing_request_is_refused() {
    let object = approval("nobody-00000000", true);
    let response = allowed(
        Endpoint::MutateApprovals,
        &review("CREATE", user("owner"), object.clone(), None),
    )
    .await;
    let object = patched(&response, &object);
    denied(
        Endpoint::ValidateApprovals,
        &review("CREATE", user("owner"), object, None),
        Reason::RequestNotFound,
        422,
        "APIKeyRequest \"nobody-00000000\" not found",
    )
    .await;
}

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

fn controller() -> Value {
    user(&limits().controller_username)
}

#[tokio::test]
async fn the_controller_writes_an_admitted_review_onto_the_key_as_it_stands() {
    let old = key("toys", "gold", Some("consumer"));
    let new = approve(old.clone(), "owner");
    let body = review("UPDATE", controller(), new.clone(), Some(old.clone()));
    let response = allowed(Endpoint::MutateKeys, &body).await;
    assert!(
        response["patch"].is_null(),
        "the reviewer's stamps are kept"
    );
    allowed(Endpoint::ValidateKeys, &body).await;

    // What the review was of must still be the key's tier and product.
    let mut other_tier = new.clone();
    other_tier["spec"]["approval"]["planTier"] = json!("silver");
    denied(
        Endpoint::MutateKeys,
        &review("UPDATE", controller(), other_tier, Some(old.clone())),
        Reason::ReviewOutdated,
        409,
        "tier",
    )
    .await;
    let mut other_product = new;
    other_product["spec"]["approval"]["productUID"] = json!("p-0");
    denied(
        Endpoint::MutateKeys,
        &review("UPDATE", controller(), other_product, Some(old)),
        Reason::ReviewOutdated,
        409,
        "uid",
    )
    .await;
}

#[tokio::test]
async fn the_controllers_side_door_is_only_the_approval() {
    // Anyone else writing a review someone else made is stamped over and refused as before.
    let old = key("toys", "gold", Some("consumer"));
    let new = approve(old.clone(), "owner");
    let (_, response) = send(
        &webhook(),
        Endpoint::ValidateKeys,
        &review("UPDATE", user("consumer"), new.clone(), Some(old.clone())),
    )
    .await;
    assert_eq!(response["allowed"], false);
    // The controller changing more than the approval goes through the usual rules.
    let mut retiered = new;
    retiered["spec"]["planTier"] = json!("silver");
    let (reply, response) = send(
        &webhook(),
        Endpoint::ValidateKeys,
        &review("UPDATE", controller(), retiered, Some(old)),
    )
    .await;
    assert_eq!(response["allowed"], false, "{response}");
    assert_ne!(reply.outcome.reason, Reason::Allowed);
    assert_eq!(response["uid"], UID);
}

/// A front end acting as itself may name its user as the reviewer only if it may impersonate
/// them; the user's own `approve` decides, and the front end is recorded.
#[tokio::test]
async fn a_trusted_front_end_reviews_for_its_user_and_is_recorded() {
    let alice = "user:default/alice";
    let webhook = Webhook::new(
        cluster()
            .with_impersonator("frontend", alice)
            .with_approver(alice, "apps", "toys"),
        limits(),
    );
    let mut object = approval("mine-1234abcd", true);
    object["spec"]["reviewedBy"] = json!(alice);
    let (_, response) = send(
        &webhook,
        Endpoint::MutateApprovals,
        &review("CREATE", user("frontend"), object.clone(), None),
    )
    .await;
    let stamped = patched(&response, &object);
    assert_eq!(stamped["spec"]["reviewedBy"], alice);
    assert_eq!(
        stamped["metadata"]["annotations"][REVIEWED_VIA_ANNOTATION],
        "frontend"
    );
    let (_, response) = send(
        &webhook,
        Endpoint::ValidateApprovals,
        &review("CREATE", user("frontend"), stamped, None),
    )
    .await;
    assert_eq!(response["allowed"], true, "{response}");

    // A user it may not impersonate: the front end itself is recorded, and may not approve.
    object["spec"]["reviewedBy"] = json!("user:default/bob");
    let (_, response) = send(
        &webhook,
        Endpoint::MutateApprovals,
        &review("CREATE", user("frontend"), object.clone(), None),
    )
    .await;
    assert!(response["warnings"].to_string().contains("may impersonate"));
    let stamped = patched(&response, &object);
    assert_eq!(stamped["spec"]["reviewedBy"], "frontend");
    assert!(stamped["metadata"]["annotations"][REVIEWED_VIA_ANNOTATION].is_null());
    let (reply, _) = send(
        &webhook,
        Endpoint::ValidateApprovals,
        &review("CREATE", user("frontend"), stamped, None),
    )
    .await;
    assert_eq!(reply.outcome.reason, Reason::NotApprover);
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
