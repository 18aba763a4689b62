//! APIKeyPolicies at admission, from the in-memory caches: `Deny` refuses naming the policy and
//! rule, `Warn` admits with a warning, `Audit` admits silently; policies match by the consumer
//! namespace's labels; the key limit they tighten is counted race-free; the mutating webhook sets
//! the tighter lifetime and leaves an automatic product's key to an owner when a policy says so.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{cluster, key, limits, patched, product, review, send, user};
use crate::resources::{APIKeyPolicy, APIProduct};
use crate::webhook::lookup::MemoryLookup;
use crate::webhook::review::{Endpoint, Webhook};
use crate::webhook::rules::Reason;

fn policy(name: &str, action: &str, rules: Value) -> APIKeyPolicy {
    serde_json::from_value(json!({
        "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKeyPolicy",
        "metadata": {"name": name},
        "spec": {"match": {"consumerNamespaceSelector": {"matchLabels": {"env": "sandbox"}}},
                 "rules": rules, "action": action}
    }))
    .unwrap()
}

/// The usual cluster with the consumer's namespace `team` labelled `env=<env>` and `policies`.
fn webhook_with(env: &str, policies: Vec<APIKeyPolicy>) -> Webhook<MemoryLookup> {
    let mut lookup = cluster().with_namespace_labels("team", &[("env", env)]);
    for p in policies {
        lookup = lookup.with_policy(p);
    }
    Webhook::new(lookup, limits())
}

/// A CREATE of the consumer's key `name` for apps/toys at `tier`, expiring in 10 days.
fn create(name: &str, tier: &str) -> Value {
    let mut k = key("toys", tier, Some("consumer"));
    k["metadata"]["name"] = json!(name);
    k["spec"]["expiresAt"] = json!("2026-06-11T12:00:00Z");
    review("CREATE", user("consumer"), k, None)
}

fn warnings(response: &Value) -> Vec<String> {
    serde_json::from_value(response["warnings"].clone()).unwrap_or_default()
}

#[tokio::test]
async fn a_deny_policy_refuses_naming_the_policy_and_the_rule() {
    let tiers = json!({"tiers": {"allowed": ["silver"]}});
    let webhook = webhook_with("sandbox", vec![policy("sandbox-tiers", "Deny", tiers)]);
    let (reply, response) = send(&webhook, Endpoint::ValidateKeys, &create("k", "gold")).await;
    assert_eq!(reply.outcome.reason, Reason::PolicyViolation, "{response}");
    assert_eq!(response["status"]["code"], 403);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("APIKeyPolicy \"sandbox-tiers\" (rule tiers, Deny): tier \"gold\""),
        "{message}"
    );
    assert!(message.contains("choose one of: silver"), "{message}");
    let (reply, _) = send(&webhook, Endpoint::ValidateKeys, &create("k", "silver")).await;
    assert_eq!(
        reply.outcome.reason,
        Reason::Allowed,
        "an allowed tier passes"
    );
}

#[tokio::test]
async fn a_warn_policy_admits_with_a_warning_and_an_audit_policy_silently() {
    let lifetime = json!({"maxLifetime": "7d"});
    let webhook = webhook_with("sandbox", vec![policy("short", "Warn", lifetime.clone())]);
    let (reply, response) = send(&webhook, Endpoint::ValidateKeys, &create("k", "gold")).await;
    assert_eq!(reply.outcome.reason, Reason::Allowed);
    let said = warnings(&response);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0]
            .starts_with("APIKeyPolicy \"short\" (rule maxLifetime, Warn): the key would live 10d"),
        "{said:?}"
    );

    let webhook = webhook_with("sandbox", vec![policy("short", "Audit", lifetime)]);
    let (reply, response) = send(&webhook, Endpoint::ValidateKeys, &create("k", "gold")).await;
    assert_eq!(reply.outcome.reason, Reason::Allowed);
    assert!(warnings(&response).is_empty(), "{response}");
}

#[tokio::test]
async fn a_policy_concerns_only_the_namespaces_it_selects() {
    let tiers = json!({"tiers": {"forbidden": ["gold"]}});
    let webhook = webhook_with("prod", vec![policy("sandbox-tiers", "Deny", tiers.clone())]);
    let (reply, _) = send(&webhook, Endpoint::ValidateKeys, &create("k", "gold")).await;
    assert_eq!(reply.outcome.reason, Reason::Allowed);
    // A namespace whose labels the cache does not hold is not selected either.
    let webhook = Webhook::new(
        cluster().with_policy(policy("sandbox-tiers", "Deny", tiers)),
        limits(),
    );
    let (reply, _) = send(&webhook, Endpoint::ValidateKeys, &create("k", "gold")).await;
    assert_eq!(reply.outcome.reason, Reason::Allowed);
}

#[tokio::test]
async fn the_tightest_of_several_policies_wins_and_the_flags_stay_the_ceiling() {
    let webhook = webhook_with(
        "sandbox",
        vec![
            policy("a-loose", "Deny", json!({"maxLifetime": "20d"})),
            policy("b-tight", "Deny", json!({"maxLifetime": "5d"})),
        ],
    );
    let (reply, response) = send(&webhook, Endpoint::ValidateKeys, &create("k", "gold")).await;
    assert_eq!(reply.outcome.reason, Reason::PolicyViolation);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"b-tight\" (rule maxLifetime"),
        "{message}"
    );

    // A policy looser than --max-key-lifetime (30 days here) does not loosen it.
    let webhook = webhook_with(
        "sandbox",
        vec![policy("lax", "Deny", json!({"maxLifetime": "400d"}))],
    );
    let mut long = create("k", "gold");
    long["request"]["object"]["spec"]["expiresAt"] = json!("2026-09-01T12:00:00Z");
    let (reply, _) = send(&webhook, Endpoint::ValidateKeys, &long).await;
    assert_eq!(reply.outcome.reason, Reason::ExpiresTooLate);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_policy_key_limit_holds_under_concurrent_creates_and_names_the_policy() {
    let one = json!({"maxKeysPerRequesterPerProduct": 1});
    let webhook = Arc::new(webhook_with(
        "sandbox",
        vec![policy("one-key", "Deny", one)],
    ));
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let webhook = webhook.clone();
            tokio::spawn(async move {
                send(
                    &webhook,
                    Endpoint::ValidateKeys,
                    &create(&format!("k{i}"), "gold"),
                )
                .await
            })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        let (reply, response) = task.await.unwrap();
        match reply.outcome.reason {
            Reason::Allowed => admitted += 1,
            Reason::TooManyKeys => {
                let message = response["status"]["message"].as_str().unwrap();
                assert!(
                    message.contains("the limit is 1 (APIKeyPolicy \"one-key\", rule maxKeysPerRequesterPerProduct"),
                    "{message}"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(admitted, 1);
}

#[tokio::test]
async fn a_warn_key_limit_warns_without_refusing_or_holding_a_place() {
    let one = json!({"maxKeysPerRequesterPerProduct": 1});
    let webhook = webhook_with("sandbox", vec![policy("one-key", "Warn", one)]);
    let (_, first) = send(&webhook, Endpoint::ValidateKeys, &create("k1", "gold")).await;
    assert!(warnings(&first).is_empty(), "{first}");
    let (reply, second) = send(&webhook, Endpoint::ValidateKeys, &create("k2", "gold")).await;
    assert_eq!(reply.outcome.reason, Reason::Allowed);
    let said = warnings(&second).join("\n");
    assert!(
        said.contains(
            "APIKeyPolicy \"one-key\" (rule maxKeysPerRequesterPerProduct, Warn): 1 other keys"
        ),
        "{said}"
    );
    // The flag's limit (2 here) still refuses the third.
    let (reply, _) = send(&webhook, Endpoint::ValidateKeys, &create("k3", "gold")).await;
    assert_eq!(reply.outcome.reason, Reason::TooManyKeys);
}

#[tokio::test]
async fn the_mutating_webhook_sets_the_policy_lifetime_and_says_whose() {
    let webhook = webhook_with(
        "sandbox",
        vec![policy("week", "Deny", json!({"maxLifetime": "7d"}))],
    );
    let object = key("toys", "gold", None);
    let (_, response) = send(
        &webhook,
        Endpoint::MutateKeys,
        &review("CREATE", user("consumer"), object.clone(), None),
    )
    .await;
    let stamped = patched(&response, &object);
    assert_eq!(stamped["spec"]["expiresAt"], json!("2026-06-08T12:00:00Z"));
    let said = warnings(&response).join("\n");
    assert!(
        said.contains("at most 7 days (APIKeyPolicy \"week\")"),
        "{said}"
    );
    // The stamped key passes validation.
    let (reply, _) = send(
        &webhook,
        Endpoint::ValidateKeys,
        &review("CREATE", user("consumer"), stamped, None),
    )
    .await;
    assert_eq!(reply.outcome.reason, Reason::Allowed);
}

#[tokio::test]
async fn a_manual_approval_policy_leaves_an_automatic_products_key_to_an_owner() {
    let mut automatic = product("toys", true, &["gold"]);
    automatic["spec"]["approvalMode"] = json!("automatic");
    let automatic: APIProduct = serde_json::from_value(automatic).unwrap();
    let object = key("toys", "gold", None);
    let body = review("CREATE", user("consumer"), object.clone(), None);

    let lookup = |action: &str| {
        cluster()
            .with_product(automatic.clone())
            .with_namespace_labels("team", &[("env", "sandbox")])
            .with_policy(policy("owners", action, json!({"manualApproval": true})))
    };
    let webhook = Webhook::new(lookup("Deny"), limits());
    let (_, response) = send(&webhook, Endpoint::MutateKeys, &body).await;
    let stamped = patched(&response, &object);
    assert!(stamped["spec"].get("approval").is_none(), "{stamped}");
    let said = warnings(&response).join("\n");
    assert!(
        said.contains("waits for an owner's approval: APIKeyPolicy \"owners\""),
        "{said}"
    );
    let (reply, _) = send(
        &webhook,
        Endpoint::ValidateKeys,
        &review("CREATE", user("consumer"), stamped, None),
    )
    .await;
    assert_eq!(
        reply.outcome.reason,
        Reason::Allowed,
        "held back, not refused"
    );

    // Warn: approved automatically as before, with a warning at validation.
    let webhook = Webhook::new(lookup("Warn"), limits());
    let (_, response) = send(&webhook, Endpoint::MutateKeys, &body).await;
    let stamped = patched(&response, &object);
    assert!(
        stamped["spec"]["approval"]["approved"] == json!(true),
        "{stamped}"
    );
    let (reply, response) = send(
        &webhook,
        Endpoint::ValidateKeys,
        &review("CREATE", user("consumer"), stamped, None),
    )
    .await;
    assert_eq!(reply.outcome.reason, Reason::Allowed);
    assert!(
        warnings(&response)
            .join("\n")
            .contains("(rule manualApproval, Warn)"),
        "{response}"
    );
}

#[tokio::test]
async fn a_pending_key_moved_to_a_forbidden_tier_is_refused() {
    let tiers = json!({"tiers": {"forbidden": ["gold"]}});
    let webhook = webhook_with("sandbox", vec![policy("no-gold", "Deny", tiers)]);
    let mut old = key("toys", "silver", Some("consumer"));
    old["spec"]["expiresAt"] = json!("2026-06-11T12:00:00Z");
    let mut new = old.clone();
    new["spec"]["planTier"] = json!("gold");
    let (reply, response) = send(
        &webhook,
        Endpoint::ValidateKeys,
        &review("UPDATE", user("consumer"), new, Some(old)),
    )
    .await;
    assert_eq!(reply.outcome.reason, Reason::PolicyViolation, "{response}");
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("\"no-gold\"")
    );
}
