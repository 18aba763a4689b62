use kube::runtime::reflector;
use kube::runtime::watcher;
use serde_json::json;

use super::*;
use crate::resources::APIKey;

fn now() -> Timestamp {
    "2026-06-01T12:00:00Z".parse().unwrap()
}

fn policy(name: &str, spec: serde_json::Value) -> Arc<APIKeyPolicy> {
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKeyPolicy",
            "metadata": {"name": name, "generation": 2}, "spec": spec
        }))
        .unwrap(),
    )
}

/// A key of `consumer` for apps/toys in namespace `ns`, created `created`, with `spec` merged in.
fn key(ns: &str, name: &str, created: &str, spec: serde_json::Value) -> Arc<CachedKey> {
    let mut k = json!({
        "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey",
        "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}"),
                     "creationTimestamp": created},
        "spec": {"apiProductRef": {"name": "toys", "namespace": "apps"}, "planTier": "gold",
                 "requestedBy": {"userId": "consumer"}}
    });
    for (field, value) in spec.as_object().unwrap() {
        k["spec"][field] = value.clone();
    }
    let key: APIKey = serde_json::from_value(k).unwrap();
    Arc::new(CachedKey::from(key))
}

fn view() -> PolicyView {
    let (namespaces, mut writer) = reflector::store();
    for (name, env) in [("sandbox-a", "sandbox"), ("prod-a", "prod")] {
        let mut meta: kube::core::PartialObjectMeta<k8s_openapi::api::core::v1::Namespace> =
            kube::core::PartialObjectMeta::default();
        meta.metadata.name = Some(name.into());
        meta.metadata.labels = Some([("env".to_string(), env.to_string())].into());
        writer.apply_watcher_event(&watcher::Event::Apply(meta));
    }
    let (policies, _) = reflector::store();
    PolicyView {
        policies,
        namespaces,
    }
}

fn run(policies: &[Arc<APIKeyPolicy>], keys: &[Arc<CachedKey>]) -> Findings {
    let grace = now() - k8s_openapi::jiff::SignedDuration::from_hours(24);
    findings(policies, keys, (&view(), &|_| None), grace, now())
}

#[test]
fn the_audit_finds_existing_keys_past_the_limit_and_the_lifetime_in_selected_namespaces() {
    let sandbox = json!({"consumerNamespaceSelector": {"matchLabels": {"env": "sandbox"}}});
    let policies = [
        policy(
            "two-keys",
            json!({"match": sandbox, "action": "Audit",
                                  "rules": {"maxKeysPerRequesterPerProduct": 2}}),
        ),
        policy(
            "month",
            json!({"match": sandbox, "action": "Warn",
                               "rules": {"maxLifetime": "30d"}}),
        ),
    ];
    let keys = [
        key(
            "sandbox-a",
            "first",
            "2026-05-10T00:00:00Z",
            json!({"expiresAt": "2026-06-05T00:00:00Z"}),
        ),
        key(
            "sandbox-a",
            "second",
            "2026-05-11T00:00:00Z",
            json!({"expiresAt": "2027-05-01T00:00:00Z"}),
        ),
        key(
            "sandbox-a",
            "third",
            "2026-05-12T00:00:00Z",
            json!({"expiresAt": "2026-06-01T13:00:00Z"}),
        ),
        // A rejected key counts for nothing and is not judged.
        key(
            "sandbox-a",
            "denied",
            "2026-04-01T00:00:00Z",
            json!({"approval": {"approved": false, "reviewedBy": "owner"}}),
        ),
        // Another namespace the policies do not select (its key counts in the requester's line,
        // behind the others, and is not judged).
        key("prod-a", "prod", "2026-05-20T00:00:00Z", json!({})),
    ];
    let found = run(&policies, &keys);
    let names = |policy: &str| -> Vec<(String, String)> {
        found[policy]
            .iter()
            .map(|f| (f.violation.name.clone(), f.violation.rule.clone()))
            .collect()
    };
    assert_eq!(
        names("two-keys"),
        [(
            "third".to_string(),
            "maxKeysPerRequesterPerProduct".to_string()
        )],
        "the third key in creation order is past the limit"
    );
    assert_eq!(
        names("month"),
        [("second".to_string(), "maxLifetime".to_string())]
    );
    let second = &found["month"][0].violation.message;
    assert!(second.contains("30d"), "{second}");

    let status = desired_status(&policies[0], &found["two-keys"], now());
    let violations = status.violations.unwrap();
    assert_eq!(violations.count, 1);
    assert_eq!(violations.by_rule["maxKeysPerRequesterPerProduct"], 1);
    assert_eq!(status.observed_generation, Some(2));
    let ready: Vec<_> = status
        .conditions
        .iter()
        .map(|c| (c.type_.as_str(), c.status.as_str()))
        .collect();
    assert_eq!(ready, [("Accepted", "True"), ("Ready", "True")]);
}

#[test]
fn the_status_lists_a_bounded_number_and_counts_every_key_once() {
    let policies = [policy(
        "strict",
        json!({"action": "Audit",
        "rules": {"expiryRequired": true, "maxLifetime": "1d"}}),
    )];
    let keys: Vec<_> = (0..30)
        .map(|i| {
            key(
                "sandbox-a",
                &format!("k{i:02}"),
                "2026-05-01T00:00:00Z",
                json!({}),
            )
        })
        .collect();
    let found = run(&policies, &keys);
    assert_eq!(found["strict"].len(), 60, "two rules each");
    let summary = summary(&found["strict"]);
    assert_eq!(summary.count, 30);
    assert_eq!(summary.by_rule["expiryRequired"], 30);
    assert_eq!(summary.by_rule["maxLifetime"], 30);
    assert_eq!(summary.keys.len(), LISTED);
}

#[test]
fn a_policy_devportal_cannot_read_is_reported_not_applied() {
    let broken = policy("broken", json!({"rules": {"maxLifetime": "forever"}}));
    let status = desired_status(&broken, &[], now());
    let accepted = &status.conditions[0];
    assert_eq!(
        (accepted.type_.as_str(), accepted.status.as_str()),
        ("Accepted", "False")
    );
    assert!(
        accepted.message.contains("maxLifetime"),
        "{}",
        accepted.message
    );
    let keys = [key("sandbox-a", "k", "2026-05-01T00:00:00Z", json!({}))];
    assert!(run(&[broken], &keys)["broken"].is_empty());
}
