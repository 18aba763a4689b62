//! A trusted front end acting as itself: it may name as requester a user it may impersonate (kept,
//! with its e-mail as given, and the front end in the requested-via annotation); anyone else's
//! claim is overwritten. The annotation is devportal's alone.

use serde_json::{Value, json};

use super::{cluster, key, limits, patched, review, send, user};
use crate::names::REQUESTED_VIA_ANNOTATION;
use crate::webhook::review::{Endpoint, Webhook};
use crate::webhook::rules::Reason;

const FRONT_END: &str = "system:serviceaccount:portal:backstage";
const ALICE: &str = "user:default/alice";

fn front_end_webhook() -> Webhook<crate::webhook::lookup::MemoryLookup> {
    Webhook::new(cluster().with_impersonator(FRONT_END, ALICE), limits())
}

fn requested_for(user_id: &str, email: &str) -> Value {
    let mut k = key("toys", "gold", None);
    k["spec"]["requestedBy"] = json!({"userId": user_id, "email": email});
    k
}

/// Mutates `object` as `caller`, then validates the result; returns both responses and the
/// mutated object.
async fn admit(caller: &str, object: Value, old: Option<Value>) -> (Value, Value, Value) {
    let webhook = front_end_webhook();
    let operation = if old.is_some() { "UPDATE" } else { "CREATE" };
    let body = review(operation, user(caller), object.clone(), old.clone());
    let (_, mutation) = send(&webhook, Endpoint::MutateKeys, &body).await;
    assert_eq!(mutation["allowed"], true, "{mutation}");
    let mutated = if mutation["patch"].is_null() {
        object
    } else {
        patched(&mutation, &object)
    };
    let body = review(operation, user(caller), mutated.clone(), old);
    let (_, validation) = send(&webhook, Endpoint::ValidateKeys, &body).await;
    (mutation, validation, mutated)
}

#[tokio::test]
async fn a_front_end_may_request_for_a_user_it_may_impersonate_and_is_recorded() {
    let (_, validation, key) = admit(FRONT_END, requested_for(ALICE, "unknown"), None).await;
    assert_eq!(validation["allowed"], true, "{validation}");
    assert_eq!(
        key["spec"]["requestedBy"],
        json!({"userId": ALICE, "email": "unknown"}),
        "the user and the e-mail the front end gave are kept"
    );
    assert_eq!(
        key["metadata"]["annotations"][REQUESTED_VIA_ANNOTATION],
        FRONT_END
    );
}

#[tokio::test]
async fn a_claim_without_impersonate_is_overwritten_with_a_warning() {
    // The front end may impersonate alice, not bob; a consumer may impersonate nobody.
    for (caller, claimed) in [(FRONT_END, "user:default/bob"), ("consumer", ALICE)] {
        let (mutation, validation, key) =
            admit(caller, requested_for(claimed, "bob@example.com"), None).await;
        assert_eq!(validation["allowed"], true, "{validation}");
        assert_eq!(key["spec"]["requestedBy"]["userId"], caller);
        assert!(key["metadata"]["annotations"][REQUESTED_VIA_ANNOTATION].is_null());
        let warnings: Vec<String> = serde_json::from_value(mutation["warnings"].clone()).unwrap();
        let warnings = warnings.join("\n");
        assert!(
            warnings.contains(&format!("{claimed:?} was replaced with your username")),
            "{warnings}"
        );
    }
    // Without a trusted front end, the e-mail rule of everyone else applies.
    let (_, validation, _) = admit("consumer", requested_for(ALICE, "unknown"), None).await;
    assert_eq!(validation["allowed"], false, "{validation}");
    let message = validation["status"]["message"].as_str().unwrap();
    assert!(message.contains("is not an e-mail address"), "{message}");
}

#[tokio::test]
async fn nobody_sets_or_changes_the_requested_via_annotation() {
    // Forged at CREATE by someone acting as themself: removed.
    let mut forged = key("toys", "gold", Some("consumer"));
    forged["metadata"]["annotations"] = json!({REQUESTED_VIA_ANNOTATION: FRONT_END});
    let (mutation, validation, key) = admit("consumer", forged, None).await;
    assert_eq!(validation["allowed"], true, "{validation}");
    assert!(key["metadata"]["annotations"][REQUESTED_VIA_ANNOTATION].is_null());
    assert!(mutation["warnings"].to_string().contains("was removed"));

    // Changed on UPDATE, even by an admin: restored.
    let (_, _, stored) = admit(FRONT_END, requested_for(ALICE, "unknown"), None).await;
    let mut changed = stored.clone();
    changed["metadata"]["annotations"][REQUESTED_VIA_ANNOTATION] = json!("someone");
    let (mutation, validation, key) = admit("admin", changed, Some(stored.clone())).await;
    assert_eq!(validation["allowed"], true, "{validation}");
    assert_eq!(
        key["metadata"]["annotations"][REQUESTED_VIA_ANNOTATION],
        FRONT_END
    );
    assert!(mutation["warnings"].to_string().contains("was restored"));

    // A write past the mutating webhook is refused.
    let mut changed = stored.clone();
    changed["metadata"]["annotations"] = json!({});
    let body = review("UPDATE", user("admin"), changed, Some(stored));
    let (reply, _) = send(&front_end_webhook(), Endpoint::ValidateKeys, &body).await;
    assert_eq!(reply.outcome.reason, Reason::GuardedMetadata);
}

#[tokio::test]
async fn a_front_end_edits_the_pending_requests_of_its_users_only() {
    let (_, _, alices) = admit(FRONT_END, requested_for(ALICE, "unknown"), None).await;
    let mut edited = alices.clone();
    edited["spec"]["useCase"] = json!("a better reason");
    let (_, validation, _) = admit(FRONT_END, edited, Some(alices)).await;
    assert_eq!(validation["allowed"], true, "{validation}");

    // A request of someone it may not impersonate is not the front end's to edit.
    let bobs = key("toys", "gold", Some("user:default/bob"));
    let mut edited = bobs.clone();
    edited["spec"]["useCase"] = json!("not yours");
    let (_, validation, _) = admit(FRONT_END, edited, Some(bobs)).await;
    assert_eq!(validation["allowed"], false, "{validation}");
    let message = validation["status"]["message"].as_str().unwrap();
    assert!(message.contains("only the requester"), "{message}");
}
