//! The two API-key Secrets: the **enforcement Secret** the gateway's auth (Authorino) matches by
//! label, and the **consumer Secret** in the APIKey's namespace that the consumer reads.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Resource;
use kube::api::ObjectMeta;

use crate::keys::ApiKeyValue;
use crate::names::{
    API_KEY_DATA, APIKEY_ANNOTATION, AUTHORINO_LABEL, EXPIRES_ANNOTATION, MANAGED_LABEL,
    PLAN_ANNOTATION, ROLE_LABEL, USER_ANNOTATION,
};
use crate::resources::APIKey;

/// Which of the two Secrets: the value of [`ROLE_LABEL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The Secret Authorino matches, in the AuthPolicy's namespace.
    Enforcement,
    /// The Secret the consumer reads, in the key's namespace.
    Consumer,
}

impl Role {
    /// The label value, also the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Enforcement => "enforcement",
            Role::Consumer => "consumer",
        }
    }
}

/// Where the enforcement Secret of a key lives, and how Authorino finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enforcement {
    /// Namespace of the Secret: the AuthPolicy's, or the configured one for `allNamespaces` rules.
    pub namespace: String,
    /// The AuthPolicy apiKey rule's `selector.matchLabels`.
    pub selector_labels: BTreeMap<String, String>,
    /// The plan tier, for the `plan-id` annotation.
    pub tier: String,
    /// The requester, for the `user-id` annotation.
    pub user_id: String,
    /// The key's expiry (RFC 3339), for the `expires-at` annotation.
    pub expires_at: Option<String>,
}

/// `namespace/name` of a key, as written into [`APIKEY_ANNOTATION`].
pub fn key_reference(key: &APIKey) -> String {
    format!(
        "{}/{}",
        key.metadata.namespace.as_deref().unwrap_or_default(),
        key.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Name of a key's enforcement Secret: readable, unique across namespaces, at most 253 characters.
pub fn enforcement_secret_name(key: &APIKey) -> String {
    let reference = key_reference(key);
    let hash = crc32fast::hash(reference.as_bytes());
    let readable = format!("apikey-{}", reference.replace('/', "-"));
    format!("{}-{hash:08x}", truncate(&readable, 253 - 9))
}

/// Name of a key's consumer Secret in the key's namespace, unless the consumer brought their own.
pub fn consumer_secret_name(key: &APIKey) -> String {
    if let Some(own) = &key.spec.secret_ref {
        return own.name.clone();
    }
    let name = key.metadata.name.as_deref().unwrap_or_default();
    let candidate = format!("{name}-apikey");
    if candidate.len() <= 253 {
        candidate
    } else {
        let hash = crc32fast::hash(name.as_bytes());
        format!("{}-{hash:08x}-apikey", truncate(name, 253 - 16))
    }
}

fn truncate(s: &str, max: usize) -> &str {
    let cut = s.len().min(max);
    s[..cut].trim_end_matches(['-', '.'])
}

/// The desired enforcement Secret for `key` holding `value`.
pub fn enforcement_secret(key: &APIKey, target: &Enforcement, value: &ApiKeyValue) -> Secret {
    let mut labels = target.selector_labels.clone();
    labels.insert(AUTHORINO_LABEL.0.into(), AUTHORINO_LABEL.1.into());
    labels.insert(MANAGED_LABEL.into(), "true".into());
    labels.insert(ROLE_LABEL.into(), Role::Enforcement.as_str().into());
    let mut annotations = BTreeMap::from([
        (APIKEY_ANNOTATION.to_string(), key_reference(key)),
        (PLAN_ANNOTATION.to_string(), target.tier.clone()),
        (USER_ANNOTATION.to_string(), target.user_id.clone()),
    ]);
    if let Some(expires) = &target.expires_at {
        annotations.insert(EXPIRES_ANNOTATION.into(), expires.clone());
    }
    secret(
        ObjectMeta {
            name: Some(enforcement_secret_name(key)),
            namespace: Some(target.namespace.clone()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        value,
    )
}

/// The desired consumer Secret for `key` holding `value`, owned by the key so it goes with it.
pub fn consumer_secret(key: &APIKey, value: &ApiKeyValue) -> Secret {
    secret(
        ObjectMeta {
            name: Some(consumer_secret_name(key)),
            namespace: key.metadata.namespace.clone(),
            labels: Some(BTreeMap::from([
                (MANAGED_LABEL.to_string(), "true".to_string()),
                (ROLE_LABEL.to_string(), Role::Consumer.as_str().to_string()),
            ])),
            annotations: Some(BTreeMap::from([(
                APIKEY_ANNOTATION.to_string(),
                key_reference(key),
            )])),
            owner_references: key.controller_owner_ref(&()).map(|owner| vec![owner]),
            ..ObjectMeta::default()
        },
        value,
    )
}

fn secret(metadata: ObjectMeta, value: &ApiKeyValue) -> Secret {
    Secret {
        metadata,
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            API_KEY_DATA.to_string(),
            ByteString(value.expose().as_bytes().to_vec()),
        )])),
        ..Secret::default()
    }
}

/// The key value a Secret holds, if it holds a readable one.
pub fn value_of(secret: &Secret) -> Option<ApiKeyValue> {
    let bytes = secret.data.as_ref()?.get(API_KEY_DATA)?;
    let text = String::from_utf8(bytes.0.clone()).ok()?;
    (!text.trim().is_empty()).then(|| ApiKeyValue::from_secret(text.trim().to_string()))
}

/// A hash of a Secret's labels and annotations: the controller's cache keeps this instead of the
/// maps and compares it with the hash of what the Secret should carry.
pub fn metadata_digest(meta: &ObjectMeta) -> u64 {
    crate::digest::digest(&(&meta.labels, &meta.annotations))
}

/// Whether `actual`'s labels and annotations include everything `desired` sets, and no expiry
/// annotation `desired` dropped.
pub fn metadata_matches(actual: &ObjectMeta, desired: &ObjectMeta) -> bool {
    let contains = |have: &Option<BTreeMap<String, String>>,
                    want: &Option<BTreeMap<String, String>>| {
        want.iter()
            .flatten()
            .all(|(k, v)| have.as_ref().and_then(|h| h.get(k)) == Some(v))
    };
    let stale_expiry = desired
        .annotations
        .as_ref()
        .is_some_and(|a| !a.contains_key(EXPIRES_ANNOTATION))
        && actual
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(EXPIRES_ANNOTATION));
    contains(&actual.labels, &desired.labels)
        && contains(&actual.annotations, &desired.annotations)
        && !stale_expiry
}

/// The role of a devportal Secret, from its [`ROLE_LABEL`].
pub fn role_of(meta: &ObjectMeta) -> Option<Role> {
    match meta.labels.as_ref()?.get(ROLE_LABEL)?.as_str() {
        "enforcement" => Some(Role::Enforcement),
        "consumer" => Some(Role::Consumer),
        _ => None,
    }
}

/// `namespace/name` of the APIKey a devportal Secret belongs to, from its [`APIKEY_ANNOTATION`].
pub fn owner_reference(meta: &ObjectMeta) -> Option<&str> {
    meta.annotations
        .as_ref()?
        .get(APIKEY_ANNOTATION)
        .map(String::as_str)
        .filter(|r| r.split_once('/').is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{APIKeySpec, LocalSecretRef};

    fn key(ns: &str, name: &str) -> APIKey {
        let mut key = APIKey::new(name, APIKeySpec::new("toys", "gold"));
        key.metadata.namespace = Some(ns.into());
        key.metadata.uid = Some("0f9e2b1c-uid".into());
        key
    }

    fn target() -> Enforcement {
        Enforcement {
            namespace: "gateway-system".into(),
            selector_labels: BTreeMap::from([("app".to_string(), "toystore".to_string())]),
            tier: "gold".into(),
            user_id: "consumer".into(),
            expires_at: Some("2030-01-01T00:00:00Z".into()),
        }
    }

    #[test]
    fn enforcement_secret_carries_selector_labels_and_kuadrant_annotations() {
        let value = ApiKeyValue::from_secret("dpk_x".into());
        let s = enforcement_secret(&key("team", "k"), &target(), &value);
        let labels = s.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["app"], "toystore");
        assert_eq!(labels["authorino.kuadrant.io/managed-by"], "authorino");
        assert_eq!(labels[MANAGED_LABEL], "true");
        let annotations = s.metadata.annotations.as_ref().unwrap();
        assert_eq!(annotations[PLAN_ANNOTATION], "gold");
        assert_eq!(annotations[USER_ANNOTATION], "consumer");
        assert_eq!(annotations[EXPIRES_ANNOTATION], "2030-01-01T00:00:00Z");
        assert_eq!(annotations[APIKEY_ANNOTATION], "team/k");
        assert_eq!(s.metadata.namespace.as_deref(), Some("gateway-system"));
        assert_eq!(value_of(&s), Some(value));
        assert!(
            s.metadata.owner_references.is_none(),
            "cross-namespace: no owner"
        );
    }

    #[test]
    fn consumer_secret_is_owned_by_the_key() {
        let s = consumer_secret(&key("team", "k"), &ApiKeyValue::from_secret("v".into()));
        assert_eq!(s.metadata.name.as_deref(), Some("k-apikey"));
        let owner = &s.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(owner.kind, "APIKey");
        assert_eq!(owner.controller, Some(true));
    }

    #[test]
    fn names_are_unique_bounded_and_respect_bring_your_own() {
        let a = enforcement_secret_name(&key("a-b", "c"));
        let b = enforcement_secret_name(&key("a", "b-c"));
        assert_ne!(a, b);
        let long = key("ns", &"x".repeat(253));
        assert!(enforcement_secret_name(&long).len() <= 253);
        assert!(consumer_secret_name(&long).len() <= 253);
        let mut own = key("ns", "k");
        own.spec.secret_ref = Some(LocalSecretRef {
            name: "mine".into(),
        });
        assert_eq!(consumer_secret_name(&own), "mine");
    }

    #[test]
    fn fingerprints_tell_metadata_apart_and_roles_and_owners_are_read() {
        let value = ApiKeyValue::from_secret("v".into());
        let desired = enforcement_secret(&key("team", "k"), &target(), &value).metadata;
        assert_eq!(metadata_digest(&desired), metadata_digest(&desired.clone()));
        let mut other_tier = target();
        other_tier.tier = "silver".into();
        let changed = enforcement_secret(&key("team", "k"), &other_tier, &value).metadata;
        assert_ne!(metadata_digest(&desired), metadata_digest(&changed));
        assert_eq!(role_of(&desired), Some(Role::Enforcement));
        assert_eq!(owner_reference(&desired), Some("team/k"));
        let consumer = consumer_secret(&key("team", "k"), &value).metadata;
        assert_eq!(role_of(&consumer), Some(Role::Consumer));
    }

    #[test]
    fn metadata_drift_is_detected() {
        let value = ApiKeyValue::from_secret("v".into());
        let desired = enforcement_secret(&key("team", "k"), &target(), &value).metadata;
        assert!(metadata_matches(&desired, &desired));
        let mut changed_tier = desired.clone();
        changed_tier
            .annotations
            .as_mut()
            .unwrap()
            .insert(PLAN_ANNOTATION.into(), "silver".into());
        assert!(!metadata_matches(&changed_tier, &desired));
        let mut no_expiry_target = target();
        no_expiry_target.expires_at = None;
        let without = enforcement_secret(&key("team", "k"), &no_expiry_target, &value).metadata;
        assert!(
            !metadata_matches(&desired, &without),
            "a removed expiry must be removed"
        );
    }
}
