//! Unit tests of the overlap records and the key gate.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use super::*;
use crate::resources::{
    APIProductSpec, APIProductStatus, ApprovalMode, HTTPRouteRef, PublishStatus,
};

fn product(record: Option<&BTreeMap<String, String>>, ready: (&str, &str)) -> APIProduct {
    let mut product = APIProduct::new(
        "copycat",
        APIProductSpec {
            display_name: "Copycat".into(),
            description: None,
            version: None,
            tags: vec![],
            approval_mode: ApprovalMode::Automatic,
            publish_status: PublishStatus::Published,
            target_ref: HTTPRouteRef::route("r"),
            documentation: None,
            contact: None,
        },
    );
    product.metadata.namespace = Some("tenant".into());
    product.status = Some(APIProductStatus {
        enforcement: record.map(|labels| ProductEnforcement {
            auth_policy: "tenant/auth".into(),
            labels: labels.clone(),
            since: Time(Timestamp::UNIX_EPOCH),
        }),
        conditions: vec![Condition {
            type_: product_condition::READY.into(),
            status: ready.0.into(),
            reason: ready.1.into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: Time(Timestamp::UNIX_EPOCH),
        }],
        ..APIProductStatus::default()
    });
    product
}

fn policy(namespace: &str, name: &str) -> AuthPolicy {
    let mut policy: AuthPolicy = serde_json::from_value(serde_json::json!({
        "apiVersion": "kuadrant.io/v1",
        "kind": "AuthPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "r"}}
    }))
    .unwrap();
    policy.metadata.namespace = Some(namespace.into());
    policy
}

#[test]
fn a_claim_keeps_its_time_only_while_its_labels_and_policy_stay_the_same() {
    let t0 = Timestamp::from_second(1_000).unwrap();
    let t1 = Timestamp::from_second(2_000).unwrap();
    let labels = BTreeMap::from([
        ("app".to_string(), "shop".to_string()),
        (APIKEY_UID_LABEL.to_string(), SAMPLE_UID.to_string()),
    ]);
    let first = record(None, &policy("shop", "auth"), &labels, t0);
    assert_eq!(first.auth_policy, "shop/auth");
    assert!(!first.labels.contains_key(APIKEY_UID_LABEL), "not per key");
    assert_eq!(first.since.0, t0);
    let same = record(Some(&first), &policy("shop", "auth"), &labels, t1);
    assert_eq!(same.since.0, t0, "unchanged: still the first claim");
    let mut edited = labels.clone();
    edited.insert("app".into(), "bookshop".into());
    let newcomer = record(Some(&first), &policy("shop", "auth"), &edited, t1);
    assert_eq!(newcomer.since.0, t1, "an edited selector makes a newcomer");
    let moved = record(Some(&first), &policy("shop", "other"), &labels, t1);
    assert_eq!(moved.since.0, t1, "another AuthPolicy makes a newcomer");
}

#[test]
fn a_key_is_enforced_only_with_labels_its_product_checked_and_was_not_refused_for() {
    let checked = BTreeMap::from([("app".to_string(), "bookshop".to_string())]);
    let mut key_labels = checked.clone();
    key_labels.insert(APIKEY_UID_LABEL.into(), "uid-1".into());
    let ready = product(Some(&checked), ("True", "Ready"));
    assert_eq!(key_gate(&ready, &key_labels), Gate::Open);
    let refused = product(Some(&checked), ("False", SELECTOR_OVERLAP));
    assert!(
        matches!(key_gate(&refused, &key_labels), Gate::Refused(m) if m.contains("tenant/copycat"))
    );
    let unchecked = product(None, ("True", "Ready"));
    assert_eq!(key_gate(&unchecked, &key_labels), Gate::NotYet);
    let mut other_labels = key_labels.clone();
    other_labels.insert("app".into(), "toys".into());
    assert_eq!(key_gate(&ready, &other_labels), Gate::NotYet);
}
