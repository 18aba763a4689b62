//! Automatic approvals: recorded by the mutating webhook in a key born for an automatic product,
//! and the controller's one spec write recording the same for a key born without it. Exactly that
//! is admitted, and only for a product that approves automatically.

use serde_json::{Value, json};

use super::{cluster, key, limits, patched, product, review, send, user};
use crate::names::AUTOMATIC_REVIEWER;
use crate::resources::APIProduct;
use crate::webhook::review::{Endpoint, Webhook};
use crate::webhook::rules::Reason;

fn webhook(mode: &str) -> Webhook<crate::webhook::lookup::MemoryLookup> {
    let mut auto = product("auto", true, &["gold"]);
    auto["spec"]["approvalMode"] = json!(mode);
    let auto: APIProduct = serde_json::from_value(auto).unwrap();
    Webhook::new(cluster().with_product(auto), limits())
}

fn recorded(mut key: Value, uid: &str) -> Value {
    key["spec"]["approval"] = json!({
        "approved": true, "reviewedBy": AUTOMATIC_REVIEWER, "reviewedAt": "2026-06-01T11:59:00Z",
        "productUID": uid, "planTier": "gold"
    });
    key
}

async fn update(mode: &str, caller: &str, old: &Value, new: &Value) -> (Reason, Value) {
    let webhook = webhook(mode);
    let body = review("UPDATE", user(caller), new.clone(), Some(old.clone()));
    let (reply, mutation) = send(&webhook, Endpoint::MutateKeys, &body).await;
    if mutation["allowed"] != true {
        return (reply.outcome.reason, mutation);
    }
    let mutated = patched(&mutation, new);
    let body = review("UPDATE", user(caller), mutated.clone(), Some(old.clone()));
    let (reply, _) = send(&webhook, Endpoint::ValidateKeys, &body).await;
    (reply.outcome.reason, mutated)
}

#[tokio::test]
async fn the_controller_records_an_automatic_approval_and_nothing_else() {
    let controller = limits().controller_username;
    let old = key("auto", "gold", Some("consumer"));
    let (reason, stored) = update(
        "automatic",
        &controller,
        &old,
        &recorded(old.clone(), "p-1"),
    )
    .await;
    assert_eq!(reason, Reason::Allowed);
    assert_eq!(stored["spec"]["approval"]["reviewedBy"], AUTOMATIC_REVIEWER);

    // Not for a manual product, not for another product uid, not with any other change.
    let (reason, _) = update("manual", &controller, &old, &recorded(old.clone(), "p-1")).await;
    assert_eq!(reason, Reason::NotApprover);
    let (reason, _) = update(
        "automatic",
        &controller,
        &old,
        &recorded(old.clone(), "p-0"),
    )
    .await;
    assert_ne!(reason, Reason::Allowed);
    let mut more = recorded(old.clone(), "p-1");
    more["spec"]["useCase"] = json!("changed by the controller");
    let (reason, _) = update("automatic", &controller, &old, &more).await;
    assert_eq!(reason, Reason::NotApprover);
    // Never over a denial.
    let mut denied = old.clone();
    denied["spec"]["approval"] = json!({"approved": false, "reviewedBy": "owner"});
    let (reason, _) = update(
        "automatic",
        &controller,
        &denied,
        &recorded(old.clone(), "p-1"),
    )
    .await;
    assert_eq!(reason, Reason::NotApprover);
}

#[tokio::test]
async fn nobody_else_writes_as_the_automatic_reviewer() {
    // The owner of toys approves and names the automatic reviewer: stamped with their own name.
    let old = key("toys", "gold", Some("consumer"));
    let (reason, stored) = update("automatic", "owner", &old, &recorded(old.clone(), "p-1")).await;
    assert_eq!(reason, Reason::Allowed);
    assert_eq!(stored["spec"]["approval"]["reviewedBy"], "owner");
    // A consumer may not approve at all.
    let (reason, _) = update("automatic", "consumer", &old, &recorded(old.clone(), "p-1")).await;
    assert_eq!(reason, Reason::NotApprover);
}

async fn create(mode: &str, caller: &str, sent: &Value) -> (Reason, Value) {
    let webhook = webhook(mode);
    let body = review("CREATE", user(caller), sent.clone(), None);
    let (_, mutation) = send(&webhook, Endpoint::MutateKeys, &body).await;
    assert_eq!(mutation["allowed"], true, "{mutation}");
    let mutated = patched(&mutation, sent);
    let body = review("CREATE", user(caller), mutated.clone(), None);
    let (validation, _) = send(&webhook, Endpoint::ValidateKeys, &body).await;
    (validation.outcome.reason, mutated)
}

#[tokio::test]
async fn a_key_for_an_automatic_product_is_born_with_its_approval_recorded() {
    let sent = key("auto", "gold", None);
    let (reason, stored) = create("automatic", "consumer", &sent).await;
    assert_eq!(reason, Reason::Allowed);
    let approval = &stored["spec"]["approval"];
    assert_eq!(approval["approved"], true);
    assert_eq!(approval["reviewedBy"], AUTOMATIC_REVIEWER);
    assert_eq!(approval["planTier"], "gold");
    assert_eq!(approval["productUID"], "p-1");
    assert!(approval["reviewedAt"].is_string());

    // A manual product's key waits for a person: nothing recorded.
    let (reason, stored) = create("manual", "consumer", &sent).await;
    assert_eq!(reason, Reason::Allowed);
    assert!(stored["spec"].get("approval").is_none());
}

#[tokio::test]
async fn a_client_cannot_create_a_key_carrying_the_automatic_reviewer() {
    // Sent by the consumer: the mutating webhook stamps their own name, and they may not approve.
    let sent = recorded(key("auto", "gold", None), "p-1");
    let (reason, stored) = create("manual", "consumer", &sent).await;
    assert_eq!(stored["spec"]["approval"]["reviewedBy"], "consumer");
    assert_eq!(reason, Reason::NotApprover);
    let (reason, _) = create("automatic", "consumer", &sent).await;
    assert_eq!(reason, Reason::NotApprover);

    // Had the mutating webhook not run: the validating webhook still checks the product's mode,
    // its uid and the tier.
    let sent = recorded(key("auto", "gold", Some("consumer")), "p-1");
    let validate = |mode: &'static str, object: Value| async move {
        let body = review("CREATE", user("consumer"), object, None);
        send(&webhook(mode), Endpoint::ValidateKeys, &body)
            .await
            .0
            .outcome
            .reason
    };
    assert_eq!(validate("manual", sent.clone()).await, Reason::NotApprover);
    assert_eq!(
        validate(
            "automatic",
            recorded(key("auto", "gold", Some("consumer")), "p-0")
        )
        .await,
        Reason::NotApprover
    );
    let mut other_tier = sent.clone();
    other_tier["spec"]["approval"]["planTier"] = json!("silver");
    assert_eq!(validate("automatic", other_tier).await, Reason::NotApprover);
    assert_eq!(validate("automatic", sent).await, Reason::Allowed);
}
