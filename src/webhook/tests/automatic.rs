//! The controller's one spec write: recording an automatic approval. Exactly that is admitted from
//! its identity, and only for a product that approves automatically.

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
