//! The key limit on APIKey CREATE: which keys count, and concurrent CREATEs for one requester and
//! product that must not pass on the same count.

use std::sync::Arc;

use k8s_openapi::jiff::SignedDuration;
use serde_json::{Value, json};

use super::{cluster, key, limits, now, review, send, user};
use crate::resources::APIKey;
use crate::webhook::review::{Endpoint, Webhook};
use crate::webhook::rules::Reason;

/// A stored key `name` of the consumer for apps/toys, with `status` and `spec` merged in.
fn stored(name: &str, status: Value, spec: Value) -> APIKey {
    let mut k = key("toys", "gold", Some("consumer"));
    k["metadata"]["name"] = json!(name);
    k["status"] = status;
    for (field, value) in spec.as_object().unwrap() {
        k["spec"][field] = value.clone();
    }
    serde_json::from_value(k).unwrap()
}

/// A CREATE review of a key `name` by the consumer for apps/toys.
fn create(name: &str, dry_run: bool) -> Value {
    let mut k = key("toys", "gold", Some("consumer"));
    k["metadata"]["name"] = json!(name);
    let mut body = review("CREATE", user("consumer"), k, None);
    body["request"]["dryRun"] = json!(dry_run);
    body
}

async fn reason(webhook: &Webhook<crate::webhook::lookup::MemoryLookup>, body: &Value) -> Reason {
    send(webhook, Endpoint::ValidateKeys, body)
        .await
        .0
        .outcome
        .reason
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_for_one_requester_and_product_admit_only_the_limit() {
    let webhook = Arc::new(Webhook::new(cluster(), limits()));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let webhook = webhook.clone();
            tokio::spawn(async move { reason(&webhook, &create(&format!("k{i}"), false)).await })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        match task.await.unwrap() {
            Reason::Allowed => allowed += 1,
            other => assert_eq!(other, Reason::TooManyKeys),
        }
    }
    assert_eq!(allowed, limits().max_keys_per_user_per_product);
}

#[tokio::test]
async fn failed_keys_and_recently_expired_keys_count() {
    let expired = |ago: SignedDuration| json!({"expiresAt": (now() - ago).to_string()});
    let recent = stored(
        "recent",
        json!({"phase": "Expired"}),
        expired(SignedDuration::from_hours(1)),
    );
    let failed = stored("failed", json!({"phase": "Failed"}), json!({}));
    let webhook = Webhook::new(cluster().with_key(recent).with_key(failed), limits());
    let (reply, response) = send(&webhook, Endpoint::ValidateKeys, &create("new", false)).await;
    assert_eq!(reply.outcome.reason, Reason::TooManyKeys);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(message.contains("the limit is 2"), "{message}");

    // Past the grace (a day in these tests) an expired key no longer counts.
    let old = stored(
        "old",
        json!({"phase": "Expired"}),
        expired(SignedDuration::from_hours(25)),
    );
    let failed = stored("failed", json!({"phase": "Failed"}), json!({}));
    let webhook = Webhook::new(cluster().with_key(old).with_key(failed), limits());
    assert_eq!(
        reason(&webhook, &create("new", false)).await,
        Reason::Allowed
    );
}

#[tokio::test]
async fn a_dry_run_holds_no_place() {
    let webhook = webhook_with_one_key();
    for i in 0..3 {
        let body = create(&format!("dry{i}"), true);
        assert_eq!(reason(&webhook, &body).await, Reason::Allowed);
    }
    assert_eq!(
        reason(&webhook, &create("real", false)).await,
        Reason::Allowed
    );
    assert_eq!(
        reason(&webhook, &create("more", false)).await,
        Reason::TooManyKeys
    );
}

fn webhook_with_one_key() -> Webhook<crate::webhook::lookup::MemoryLookup> {
    let pending = stored("pending", json!({"phase": "Pending"}), json!({}));
    Webhook::new(cluster().with_key(pending), limits())
}
