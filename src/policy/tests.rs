use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::resources::APIKeyPolicy;

const DAY: Duration = Duration::from_secs(86_400);

fn policy(name: &str, spec: serde_json::Value) -> APIKeyPolicy {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKeyPolicy",
        "metadata": {"name": name}, "spec": spec
    }))
    .unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn defaults() -> Defaults {
    Defaults {
        max_keys: 5,
        max_lifetime: Some(365 * DAY),
        min_own_key_length: 32,
    }
}

/// A free-tier key from a sandbox namespace for `shop/toys`, living 90 days.
fn sandbox_key<'a>(
    consumer: &'a BTreeMap<String, String>,
    product: &'a BTreeMap<String, String>,
) -> KeyFacts<'a> {
    KeyFacts {
        consumer_labels: Some(consumer),
        product_namespace: "shop",
        product_labels: Some(product),
        tier: "free",
        lifetime: Some(90 * DAY),
        own_key_length: None,
        automatic: true,
    }
}

#[test]
fn an_empty_match_concerns_every_key_and_each_condition_narrows_it() {
    let consumer = labels(&[("env", "sandbox")]);
    let product = labels(&[("audience", "partners")]);
    let key = sandbox_key(&consumer, &product);
    assert!(concerns(&policy("all", serde_json::json!({})), &key));
    let cases = [
        (
            serde_json::json!({"consumerNamespaceSelector": {"matchLabels": {"env": "sandbox"}}}),
            true,
        ),
        (
            serde_json::json!({"consumerNamespaceSelector": {"matchLabels": {"env": "prod"}}}),
            false,
        ),
        (
            serde_json::json!({"consumerNamespaceSelector": {"matchExpressions": [
            {"key": "env", "operator": "NotIn", "values": ["prod"]}]}}),
            true,
        ),
        (
            serde_json::json!({"products": {"namespaces": ["shop"]}}),
            true,
        ),
        (
            serde_json::json!({"products": {"namespaces": ["other"]}}),
            false,
        ),
        (
            serde_json::json!({"products": {"selector": {"matchLabels": {"audience": "partners"}}}}),
            true,
        ),
        (
            serde_json::json!({"products": {"namespaces": ["shop"],
                                          "selector": {"matchLabels": {"audience": "public"}}}}),
            false,
        ),
        (serde_json::json!({"tiers": ["free", "silver"]}), true),
        (serde_json::json!({"tiers": ["gold"]}), false),
    ];
    for (m, expected) in cases {
        let p = policy("p", serde_json::json!({"match": m}));
        assert_eq!(concerns(&p, &key), expected, "{m}");
    }
    // A namespace whose labels are unknown matches only selectors that need no label.
    let unknown = KeyFacts {
        consumer_labels: None,
        ..sandbox_key(&consumer, &product)
    };
    let needs = policy(
        "p",
        serde_json::json!({"match": {"consumerNamespaceSelector": {"matchLabels": {"env": "sandbox"}}}}),
    );
    assert!(!concerns(&needs, &unknown));
}

#[test]
fn a_policy_with_a_broken_selector_or_lifetime_concerns_no_key_and_says_why() {
    let consumer = labels(&[("env", "sandbox")]);
    let product = labels(&[]);
    let key = sandbox_key(&consumer, &product);
    let bad_selector = policy(
        "bad",
        serde_json::json!({"match": {"consumerNamespaceSelector": {"matchExpressions": [
            {"key": "env", "operator": "Exists", "values": ["x"]}]}}}),
    );
    assert!(!concerns(&bad_selector, &key));
    assert!(problems(&bad_selector)[0].contains("consumerNamespaceSelector"));
    let bad_lifetime = policy(
        "bad",
        serde_json::json!({"rules": {"maxLifetime": "a month"}}),
    );
    assert!(matching([&bad_lifetime], &key).is_empty());
    assert!(problems(&bad_lifetime)[0].contains("maxLifetime"));
    let zero = policy("zero", serde_json::json!({"rules": {"maxLifetime": "0d"}}));
    assert_eq!(
        problems(&zero),
        ["spec.rules.maxLifetime: must be positive"]
    );
    assert!(
        problems(&policy(
            "ok",
            serde_json::json!({"rules": {"maxLifetime": "30d"}})
        ))
        .is_empty()
    );
}

#[test]
fn without_policies_the_flags_are_the_limits() {
    let effective = effective(&[], &defaults());
    assert_eq!(
        effective.max_keys,
        Limit {
            value: 5,
            policy: None
        }
    );
    assert_eq!(
        effective.max_keys.source("--max-keys-per-user-per-product"),
        "--max-keys-per-user-per-product"
    );
    assert_eq!(effective.max_lifetime.as_ref().unwrap().value, 365 * DAY);
    assert_eq!(effective.min_own_key_length.value, 32);
    assert_eq!(effective.expiry_required, None);
    assert_eq!(effective.manual_approval, None);
    assert_eq!(effective.tier_refused_by("free"), None);
}

#[test]
fn the_most_restrictive_deny_policy_wins_and_is_named() {
    let consumer = labels(&[]);
    let product = labels(&[]);
    let key = sandbox_key(&consumer, &product);
    let policies = [
        policy(
            "a-loose",
            serde_json::json!({"rules": {"maxKeysPerRequesterPerProduct": 3,
            "maxLifetime": "90d", "minOwnKeyLength": 40}}),
        ),
        policy(
            "b-tight",
            serde_json::json!({"rules": {"maxKeysPerRequesterPerProduct": 1,
            "maxLifetime": "30d", "minOwnKeyLength": 64, "expiryRequired": true}}),
        ),
        // Looser than the flags: never loosens them.
        policy(
            "c-lax",
            serde_json::json!({"rules": {"maxKeysPerRequesterPerProduct": 50,
            "maxLifetime": "1000d", "minOwnKeyLength": 8}}),
        ),
        // Warn and Audit report; they do not enforce.
        policy(
            "d-warn",
            serde_json::json!({"action": "Warn", "rules": {"maxKeysPerRequesterPerProduct": 1,
            "maxLifetime": "1d", "manualApproval": true}}),
        ),
    ];
    let matched = matching(&policies, &key);
    assert_eq!(matched.len(), 4);
    let effective = effective(&matched, &defaults());
    assert_eq!(
        effective.max_keys,
        Limit {
            value: 1,
            policy: Some("b-tight".into())
        }
    );
    assert_eq!(
        effective.max_lifetime,
        Some(Limit {
            value: 30 * DAY,
            policy: Some("b-tight".into())
        })
    );
    assert_eq!(
        effective.min_own_key_length,
        Limit {
            value: 64,
            policy: Some("b-tight".into())
        }
    );
    assert_eq!(effective.expiry_required.as_deref(), Some("b-tight"));
    assert_eq!(
        effective.manual_approval, None,
        "only a Warn policy asks for it"
    );
    assert_eq!(
        effective.max_keys.source("flag"),
        "APIKeyPolicy \"b-tight\""
    );
}

#[test]
fn a_lifetime_policy_sets_a_maximum_where_the_flag_has_none() {
    let consumer = labels(&[]);
    let product = labels(&[]);
    let key = sandbox_key(&consumer, &product);
    let p = [policy(
        "short",
        serde_json::json!({"rules": {"maxLifetime": "12h"}}),
    )];
    let none = Defaults {
        max_lifetime: None,
        ..defaults()
    };
    let effective = effective(&matching(&p, &key), &none);
    assert_eq!(
        effective.max_lifetime.unwrap().value,
        Duration::from_secs(12 * 3600)
    );
}

#[test]
fn tier_rules_combine_allowed_lists_narrow_and_forbidden_lists_add_up() {
    let consumer = labels(&[]);
    let product = labels(&[]);
    let key = sandbox_key(&consumer, &product);
    let policies = [
        policy(
            "a",
            serde_json::json!({"rules": {"tiers": {"allowed": ["free", "silver", "gold"]}}}),
        ),
        policy(
            "b",
            serde_json::json!({"rules": {"tiers": {"allowed": ["free", "silver"]}}}),
        ),
        policy(
            "c",
            serde_json::json!({"rules": {"tiers": {"forbidden": ["silver"]}}}),
        ),
    ];
    let effective = effective(&matching(&policies, &key), &defaults());
    assert_eq!(effective.tier_refused_by("free"), None);
    assert_eq!(effective.tier_refused_by("silver"), Some("c"));
    assert_eq!(
        effective.tier_refused_by("gold"),
        Some("b"),
        "b narrowed a's list"
    );
    assert_eq!(effective.tier_refused_by("platinum"), Some("b"));
}

#[test]
fn violations_name_the_policy_the_rule_and_the_action() {
    let consumer = labels(&[("env", "sandbox")]);
    let product = labels(&[]);
    let key = sandbox_key(&consumer, &product);
    let policies = [
        policy(
            "sandbox",
            serde_json::json!({
            "match": {"consumerNamespaceSelector": {"matchLabels": {"env": "sandbox"}}, "tiers": ["free"]},
            "rules": {"maxLifetime": "30d"}}),
        ),
        policy(
            "partners",
            serde_json::json!({"action": "Warn",
            "rules": {"manualApproval": true, "tiers": {"forbidden": ["free"]}}}),
        ),
        policy(
            "count",
            serde_json::json!({"action": "Audit",
            "rules": {"maxKeysPerRequesterPerProduct": 2}}),
        ),
        policy(
            "elsewhere",
            serde_json::json!({
            "match": {"consumerNamespaceSelector": {"matchLabels": {"env": "prod"}}},
            "rules": {"maxLifetime": "1d"}}),
        ),
    ];
    let matched = matching(&policies, &key);
    let found = violations(&matched, &key, Some(2));
    let summary: Vec<_> = found
        .iter()
        .map(|v| (v.policy.as_str(), v.rule, v.action))
        .collect();
    assert_eq!(
        summary,
        [
            ("count", RuleName::MaxKeys, PolicyAction::Audit),
            ("partners", RuleName::Tiers, PolicyAction::Warn),
            ("partners", RuleName::ManualApproval, PolicyAction::Warn),
            ("sandbox", RuleName::MaxLifetime, PolicyAction::Deny),
        ]
    );
    let lifetime = found.last().unwrap().describe();
    assert!(
        lifetime.starts_with("APIKeyPolicy \"sandbox\" (rule maxLifetime, Deny): "),
        "{lifetime}"
    );
    assert!(
        lifetime.contains("90d") && lifetime.contains("30d"),
        "{lifetime}"
    );
    // One key fewer ahead: within the count.
    assert!(
        violations(&matched, &key, Some(1))
            .iter()
            .all(|v| v.rule != RuleName::MaxKeys)
    );
    // Unknown count: the key limit is not judged.
    assert!(
        violations(&matched, &key, None)
            .iter()
            .all(|v| v.rule != RuleName::MaxKeys)
    );
}

#[test]
fn expiry_and_brought_key_rules_judge_what_the_key_carries() {
    let consumer = labels(&[]);
    let product = labels(&[]);
    let policies = [policy(
        "strict",
        serde_json::json!({"rules": {
        "expiryRequired": true, "maxLifetime": "30d", "minOwnKeyLength": 48}}),
    )];
    let forever = KeyFacts {
        lifetime: None,
        own_key_length: Some(40),
        ..sandbox_key(&consumer, &product)
    };
    let rules: Vec<_> = violations(&matching(&policies, &forever), &forever, None)
        .into_iter()
        .map(|v| v.rule)
        .collect();
    assert_eq!(
        rules,
        [
            RuleName::MaxLifetime,
            RuleName::ExpiryRequired,
            RuleName::MinOwnKeyLength
        ]
    );
    let fine = KeyFacts {
        lifetime: Some(30 * DAY),
        own_key_length: Some(48),
        automatic: false,
        ..sandbox_key(&consumer, &product)
    };
    assert!(violations(&matching(&policies, &fine), &fine, Some(100)).is_empty());
}

#[test]
fn rule_names_are_the_fields_of_spec_rules() {
    let rules = serde_json::to_value(crate::resources::PolicyRules {
        max_keys_per_requester_per_product: Some(1),
        max_lifetime: Some("1d".into()),
        expiry_required: Some(true),
        tiers: Some(crate::resources::TierRule {
            allowed: Some(vec!["a".into()]),
            forbidden: None,
        }),
        manual_approval: Some(true),
        min_own_key_length: Some(1),
    })
    .unwrap();
    for rule in RuleName::ALL {
        assert!(rules.get(rule.as_str()).is_some(), "{rule}");
    }
}
