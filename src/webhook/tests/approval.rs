//! APIKeyApprovals: the reviewer and what was reviewed are stamped, only those who may `approve`
//! the request's product may create one, and a missing request is refused (updates: see
//! [`super::re_review`]). And the controller's write of an approval onto its APIKey.
//! And the controller's write of an approval onto its APIKey.

use serde_json::{Value, json};

use super::{
    UID, allowed, approve, cluster, denied, key, limits, patched, review, send, user, webhook,
};
use crate::names::{
    API_VERSION, REVIEWED_PRODUCT_UID_ANNOTATION, REVIEWED_TIER_ANNOTATION, REVIEWED_VIA_ANNOTATION,
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
pub(super) async fn stamped(who: &str, approved: bool) -> Value {
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
async fn a_request_whose_key_expired_cannot_be_reviewed_and_a_failed_one_can() {
    for (phase, refused) in [("Expired", true), ("Failed", false), ("Approved", false)] {
        let mut closed = super::request("mine-1234abcd", "toys", "gold");
        closed["spec"]["expiresAt"] = json!("2026-05-01T00:00:00Z");
        closed["status"] = json!({"phase": phase});
        let webhook = Webhook::new(
            cluster().with_request(serde_json::from_value(closed).unwrap()),
            limits(),
        );
        for approved in [true, false] {
            let object = stamped("owner", approved).await;
            let body = review("CREATE", user("owner"), object, None);
            let (reply, response) = send(&webhook, Endpoint::ValidateApprovals, &body).await;
            assert_eq!(response["allowed"], !refused, "{phase}: {response}");
            if refused {
                assert_eq!(reply.outcome.reason, Reason::RequestExpired);
                assert_eq!(response["status"]["code"], 422);
                let message = response["status"]["message"].as_str().unwrap();
                assert!(
                    message.contains("its APIKey team/mine expired at 2026-05-01T00:00:00Z"),
                    "{message}"
                );
            }
        }
    }
}
