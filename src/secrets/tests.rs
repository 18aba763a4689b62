use super::*;
use crate::names::AUTHORINO_DEFAULT_SECRET_SELECTOR;
use crate::resources::{APIKeySpec, LocalSecretRef};

const UID: &str = "0f9e2b1c-4d5e-4f60-8a7b-9c0d1e2f3a4b";
const TOYS: ProductId<'static> = ProductId {
    namespace: "apps",
    name: "toys",
};

fn key(ns: &str, name: &str) -> APIKey {
    let mut key = APIKey::new(name, APIKeySpec::new("toys", "gold"));
    key.metadata.namespace = Some(ns.into());
    key.metadata.uid = Some(UID.into());
    key
}

fn target() -> Enforcement {
    let mut requirements = selector::parse(AUTHORINO_DEFAULT_SECRET_SELECTOR).unwrap();
    requirements.extend(selector::parse("app=toystore").unwrap());
    Enforcement {
        namespace: "kuadrant-system".into(),
        labels: enforcement_labels(UID, TOYS, &requirements).unwrap(),
        tier: "gold".into(),
        user_id: "consumer".into(),
        expires_at: Some("2030-01-01T00:00:00Z".into()),
    }
}

fn value() -> ApiKeyValue {
    ApiKeyValue::from_secret("dpk_x".into())
}

#[test]
fn enforcement_secret_carries_selector_labels_and_kuadrant_annotations() {
    let s = enforcement_secret(&key("team", "k"), &target(), &value());
    let labels = s.metadata.labels.as_ref().unwrap();
    assert_eq!(labels["app"], "toystore");
    assert_eq!(labels["authorino.kuadrant.io/managed-by"], "authorino");
    assert_eq!(labels[MANAGED_LABEL], "true");
    assert_eq!(labels[APIKEY_UID_LABEL], UID);
    let annotations = s.metadata.annotations.as_ref().unwrap();
    assert_eq!(annotations[PLAN_ANNOTATION], "gold");
    assert_eq!(annotations[USER_ANNOTATION], "consumer");
    assert_eq!(annotations[EXPIRES_ANNOTATION], "2030-01-01T00:00:00Z");
    assert_eq!(annotations[APIKEY_ANNOTATION], "team/k");
    assert_eq!(s.metadata.namespace.as_deref(), Some("kuadrant-system"));
    assert_eq!(value_of(&s), Some(value()));
    assert!(
        s.metadata.owner_references.is_none(),
        "cross-namespace: no owner"
    );
    assert!(belongs_to(&s.metadata, &key("team", "k")));
}

#[test]
fn the_enforcement_name_changes_with_what_authorino_reads_and_only_then() {
    let k = key("team", "k");
    let name = |t: &Enforcement| enforcement_secret(&k, t, &value()).metadata.name.unwrap();
    let base = name(&target());
    assert!(base.starts_with(&format!("apikey-{UID}-")), "{base}");
    assert_eq!(base.len(), "apikey-".len() + UID.len() + 9);
    assert_eq!(name(&target()), base, "deterministic");
    let other_value = enforcement_secret(&k, &target(), &ApiKeyValue::from_secret("y".into()));
    assert_eq!(
        other_value.metadata.name.unwrap(),
        base,
        "the value is not in it"
    );
    let mut silver = target();
    silver.tier = "silver".into();
    let mut no_expiry = target();
    no_expiry.expires_at = None;
    let mut relabelled = target();
    relabelled.labels.insert("extra".into(), "x".into());
    let names = [name(&silver), name(&no_expiry), name(&relabelled)];
    for other in &names {
        assert_ne!(other, &base);
    }
}

#[test]
fn consumer_secret_is_owned_by_the_key_and_named_after_its_uid() {
    let s = consumer_secret(&key("team", "k"), &value());
    assert_eq!(s.metadata.name.as_deref(), Some(&*format!("k-{UID}")));
    let owner = &s.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(owner.kind, "APIKey");
    assert_eq!(owner.controller, Some(true));
    assert_eq!(owner_uid(&s.metadata), Some(UID));
    assert!(belongs_to(&s.metadata, &key("team", "k")));
}

#[test]
fn names_are_bounded_and_respect_bring_your_own() {
    let long = key("ns", &"x".repeat(253));
    assert_eq!(consumer_secret_name(&long).len(), 253);
    assert!(legacy_enforcement_name(&long).len() <= 253);
    assert!(legacy_consumer_name(&long).len() <= 253);
    let mut own = key("ns", "k");
    own.spec.secret_ref = Some(LocalSecretRef {
        name: "mine".into(),
    });
    assert_eq!(consumer_secret_name(&own), "mine");
}

#[test]
fn secrets_of_another_key_or_without_marks_are_not_ours() {
    let k = key("team", "k");
    let enforcement = enforcement_secret(&k, &target(), &value()).metadata;
    let consumer = consumer_secret(&k, &value()).metadata;
    let mut recreated = k.clone();
    recreated.metadata.uid = Some("another-uid".into());
    assert!(!belongs_to(&enforcement, &recreated), "a namesake key");
    assert!(!belongs_to(&consumer, &recreated));
    let mut no_mark = enforcement.clone();
    no_mark.labels.as_mut().unwrap().remove(APIKEY_UID_LABEL);
    assert!(
        !belongs_to(&no_mark, &k),
        "an unmarked Secret under a new name"
    );
    no_mark.name = Some(legacy_enforcement_name(&k));
    assert!(
        belongs_to(&no_mark, &k),
        "the old layout's Secret, by its exact old name"
    );
    let mut unowned = consumer.clone();
    unowned.owner_references = None;
    assert!(!belongs_to(&unowned, &k));
    let mut unmanaged = consumer;
    unmanaged.labels.as_mut().unwrap().remove(MANAGED_LABEL);
    assert!(!belongs_to(&unmanaged, &k));
    let mut other_key = enforcement;
    other_key
        .annotations
        .as_mut()
        .unwrap()
        .insert(APIKEY_ANNOTATION.into(), "team/other".into());
    assert!(!belongs_to(&other_key, &k));
}

#[test]
fn metadata_must_match_exactly() {
    let desired = enforcement_secret(&key("team", "k"), &target(), &value());
    assert!(metadata_matches(&desired.metadata, &desired.metadata));
    assert_eq!(
        metadata_digest(&desired.metadata),
        metadata_digest(&desired.metadata.clone())
    );
    let mut extra_label = desired.metadata.clone();
    extra_label
        .labels
        .as_mut()
        .unwrap()
        .insert("x".into(), "y".into());
    assert!(
        !metadata_matches(&extra_label, &desired.metadata),
        "an added label is drift"
    );
    assert_ne!(
        metadata_digest(&extra_label),
        metadata_digest(&desired.metadata)
    );
    let mut changed_tier = desired.metadata.clone();
    changed_tier
        .annotations
        .as_mut()
        .unwrap()
        .insert(PLAN_ANNOTATION.into(), "silver".into());
    assert!(!metadata_matches(&changed_tier, &desired.metadata));
    let mut tampered = desired.clone();
    tampered.data = Some(BTreeMap::from([(
        API_KEY_DATA.to_string(),
        ByteString(b"other".to_vec()),
    )]));
    assert!(is_exactly(&desired, &desired));
    assert!(!is_exactly(&tampered, &desired), "data drift");
    assert_ne!(content_digest(&tampered), content_digest(&desired));
    assert_eq!(content_digest(&desired), content_digest(&desired.clone()));
}

#[test]
fn roles_and_owners_are_read() {
    let k = key("team", "k");
    let enforcement = enforcement_secret(&k, &target(), &value()).metadata;
    assert_eq!(role_of(&enforcement), Some(Role::Enforcement));
    assert_eq!(owner_reference(&enforcement), Some("team/k"));
    assert_eq!(owner_uid(&enforcement), Some(UID));
    let consumer = consumer_secret(&k, &value()).metadata;
    assert_eq!(role_of(&consumer), Some(Role::Consumer));
}

#[test]
fn the_worked_example_of_docs_kuadrant_md() {
    let uid = "6b1d0c7e-2f4a-4b8e-9a51-3c2d7e9f0a12";
    let mut key = APIKey::new("my-toystore-key", APIKeySpec::new("toystore-api", "gold"));
    key.metadata.namespace = Some("team-a".into());
    key.metadata.uid = Some(uid.into());
    let authorino = selector::parse(AUTHORINO_DEFAULT_SECRET_SELECTOR).unwrap();
    let rule: LabelSelector = serde_json::from_value(serde_json::json!({
        "matchLabels": {
            "app": "toystore",
            "devportal.kuadrant.io/product-namespace": "toystore",
            "devportal.kuadrant.io/product": "toystore-api"
        },
        "matchExpressions": [
            {"key": "environment", "operator": "In", "values": ["production", "staging"]},
            {"key": "deprecated", "operator": "DoesNotExist"}
        ]
    }))
    .unwrap();
    let target = Enforcement {
        namespace: "kuadrant-system".into(),
        labels: labels_for_rule(
            uid,
            ProductId {
                namespace: "toystore",
                name: "toystore-api",
            },
            &authorino,
            &rule,
        )
        .unwrap(),
        tier: "gold".into(),
        user_id: "alice".into(),
        expires_at: Some("2027-01-01T00:00:00Z".into()),
    };
    let secret = enforcement_secret(&key, &target, &value());
    assert_eq!(
        secret.metadata.name.as_deref(),
        Some("apikey-6b1d0c7e-2f4a-4b8e-9a51-3c2d7e9f0a12-94885ed4")
    );
    assert_eq!(target.labels["environment"], "production");
    assert!(!target.labels.contains_key("deprecated"));
    assert_eq!(
        consumer_secret_name(&key),
        "my-toystore-key-6b1d0c7e-2f4a-4b8e-9a51-3c2d7e9f0a12"
    );
}

#[test]
fn only_marked_enforcement_secrets_name_a_uid_for_garbage_collection() {
    let k = key("team", "k");
    let enforcement = enforcement_secret(&k, &target(), &value()).metadata;
    let uid = k.metadata.uid.clone().unwrap();
    assert_eq!(enforcement_uid(&enforcement), Some(uid.as_str()));
    let consumer = consumer_secret(&k, &value()).metadata;
    assert_eq!(
        enforcement_uid(&consumer),
        None,
        "consumer copies go with their owner"
    );
    let mut unmarked = enforcement.clone();
    unmarked.labels.as_mut().unwrap().remove(APIKEY_UID_LABEL);
    assert_eq!(enforcement_uid(&unmarked), None);
    let mut unmanaged = enforcement.clone();
    unmanaged.labels.as_mut().unwrap().remove(MANAGED_LABEL);
    assert_eq!(enforcement_uid(&unmanaged), None);
    let mut anonymous = enforcement;
    anonymous.annotations = None;
    assert_eq!(enforcement_uid(&anonymous), None);
}

#[test]
fn the_rotation_token_is_bookkeeping_not_drift() {
    let desired = enforcement_secret(&key("team", "k"), &target(), &value());
    let mut rotated = desired.metadata.clone();
    rotated
        .annotations
        .as_mut()
        .unwrap()
        .insert(ROTATION_ANNOTATION.into(), "2026-12-01T07:00:00Z".into());
    assert!(metadata_matches(&rotated, &desired.metadata));
    assert_eq!(
        metadata_digest(&rotated),
        metadata_digest(&desired.metadata)
    );
    // Any other annotation still is drift.
    let mut other = desired.metadata.clone();
    other
        .annotations
        .as_mut()
        .unwrap()
        .insert("example.com/x".into(), "y".into());
    assert!(!metadata_matches(&other, &desired.metadata));
    assert_ne!(metadata_digest(&other), metadata_digest(&desired.metadata));
}

#[test]
fn only_secrets_where_devportal_writes_them_are_its_own() {
    let k = key("team", "k");
    let enforcement = "kuadrant-system";
    assert!(sits_where_written(
        enforcement,
        Role::Enforcement,
        &k,
        enforcement
    ));
    assert!(sits_where_written("team", Role::Consumer, &k, enforcement));
    // The marks copied into a tenant's namespace, in either role.
    assert!(!sits_where_written(
        "tenant",
        Role::Enforcement,
        &k,
        enforcement
    ));
    assert!(!sits_where_written(
        "tenant",
        Role::Consumer,
        &k,
        enforcement
    ));
    // An enforcement Secret in the key's namespace, a consumer copy in the enforcement one.
    assert!(!sits_where_written(
        "team",
        Role::Enforcement,
        &k,
        enforcement
    ));
    assert!(!sits_where_written(
        enforcement,
        Role::Consumer,
        &k,
        enforcement
    ));
}

#[test]
fn a_consumer_secret_carries_its_mac_and_a_changed_mac_is_drift() {
    let k = key("team", "k");
    let plain = consumer_secret(&k, &value());
    assert_eq!(value_mac(&plain.metadata), None);
    let vouched = vouched_consumer_secret(&k, &value(), "ab".repeat(32));
    assert_eq!(value_mac(&vouched.metadata), Some("ab".repeat(32).as_str()));
    // Compared on the live Secret, not by the cache's metadata digest.
    assert_eq!(
        metadata_digest(&plain.metadata),
        metadata_digest(&vouched.metadata)
    );
    assert!(is_exactly(&vouched, &vouched));
    assert!(!is_exactly(&plain, &vouched), "a MAC removed");
    let other = vouched_consumer_secret(&k, &value(), "cd".repeat(32));
    assert!(!is_exactly(&other, &vouched), "a MAC changed");
}
