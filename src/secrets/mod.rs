//! The two API-key Secrets: the **enforcement Secret** that Authorino indexes, in the enforcement
//! namespace (where kuadrant-operator puts the AuthConfigs), and the **consumer Secret** in the
//! APIKey's namespace that the consumer reads.
//!
//! Both names derive from the APIKey's uid, so no two keys — nor a key and its re-created
//! namesake — share a Secret. The enforcement Secret's name also carries a digest of its labels
//! and annotations: Authorino ignores an update that changes only those, so a change of tier,
//! requester, expiry or selector labels gives a new name, and the controller replaces the Secret
//! (new one first, then the old one goes) instead of patching it.

mod ownership;

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Resource;
use kube::api::ObjectMeta;

pub use ownership::{
    belongs_to, enforcement_uid, legacy_consumer_name, legacy_enforcement_name, owner_reference,
    owner_uid, role_of, sits_where_written,
};

use crate::keys::ApiKeyValue;
use crate::names::{
    API_KEY_DATA, APIKEY_ANNOTATION, APIKEY_UID_LABEL, EXPIRES_ANNOTATION, MANAGED_LABEL,
    PLAN_ANNOTATION, PRODUCT_LABEL, PRODUCT_NAMESPACE_LABEL, ROLE_LABEL, ROTATION_ANNOTATION,
    USER_ANNOTATION, VALUE_MAC_ANNOTATION,
};
use crate::resources::APIKey;
use crate::selector::{self, Requirement};

/// Which of the two Secrets: the value of [`ROLE_LABEL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The Secret Authorino indexes, in the enforcement namespace.
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

/// Where a key's enforcement Secret lives and what Authorino reads on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enforcement {
    /// The enforcement namespace.
    pub namespace: String,
    /// Every label: those the selectors need (see [`enforcement_labels`]) and devportal's own.
    pub labels: BTreeMap<String, String>,
    /// The plan tier, for the `plan-id` annotation.
    pub tier: String,
    /// The requester, for the `user-id` annotation.
    pub user_id: String,
    /// The key's expiry (RFC 3339), for the `expires-at` annotation.
    pub expires_at: Option<String>,
}

impl Enforcement {
    /// The enforcement Secret of `key` in `namespace` with `labels`: the key's tier, requester
    /// and expiry for the annotations.
    pub fn for_key(key: &APIKey, namespace: String, labels: BTreeMap<String, String>) -> Self {
        Self {
            namespace,
            labels,
            tier: key.spec.plan_tier.clone(),
            user_id: key
                .spec
                .requested_by
                .as_ref()
                .map(|r| r.user_id.clone())
                .unwrap_or_default(),
            expires_at: key.spec.expires_at.as_ref().map(|t| t.0.to_string()),
        }
    }
}

/// `namespace/name` of a key, as written into [`APIKEY_ANNOTATION`].
pub fn key_reference(key: &APIKey) -> String {
    format!(
        "{}/{}",
        key.metadata.namespace.as_deref().unwrap_or_default(),
        key.metadata.name.as_deref().unwrap_or_default()
    )
}

fn uid(key: &APIKey) -> &str {
    key.metadata.uid.as_deref().unwrap_or_default()
}

/// The product an enforcement Secret is for, as its labels name it ([`PRODUCT_NAMESPACE_LABEL`],
/// [`PRODUCT_LABEL`]).
#[derive(Clone, Copy, Debug)]
pub struct ProductId<'a> {
    /// The APIProduct's namespace.
    pub namespace: &'a str,
    /// The APIProduct's name.
    pub name: &'a str,
}

impl ProductId<'_> {
    /// The two labels naming the product: its namespace (a DNS label, always a valid label
    /// value) and its name, cut to 54 characters and followed by `-` and a CRC32 when it is
    /// longer than the 63 characters a label value may have.
    pub fn labels(&self) -> [(String, String); 2] {
        let name = if self.name.len() <= 63 {
            self.name.to_string()
        } else {
            format!(
                "{}-{:08x}",
                self.name[..54].trim_end_matches(['-', '.']),
                crc32fast::hash(self.name.as_bytes())
            )
        };
        [
            (
                PRODUCT_NAMESPACE_LABEL.to_string(),
                self.namespace.to_string(),
            ),
            (PRODUCT_LABEL.to_string(), name),
        ]
    }
}

/// The labels of the enforcement Secret of the key with `uid` for `product`: devportal's own
/// (which name the key and the product), plus what `requirements` (Authorino's
/// `--secret-label-selector` and the apiKey rule's selector) need. Fails, saying why, when no
/// Secret can meet them.
pub fn enforcement_labels(
    uid: &str,
    product: ProductId<'_>,
    requirements: &[Requirement],
) -> Result<BTreeMap<String, String>, String> {
    let mut own = BTreeMap::from([
        (MANAGED_LABEL.to_string(), "true".to_string()),
        (
            ROLE_LABEL.to_string(),
            Role::Enforcement.as_str().to_string(),
        ),
        (APIKEY_UID_LABEL.to_string(), uid.to_string()),
    ]);
    own.extend(product.labels());
    selector::satisfy(requirements, &own)
}

/// The labels the enforcement Secret of the key with `uid` for `product` needs for an apiKey
/// rule whose selector is `rule_selector`, when Authorino runs with `authorino_selector`; or why
/// no Secret can have them.
pub fn labels_for_rule(
    uid: &str,
    product: ProductId<'_>,
    authorino_selector: &[Requirement],
    rule_selector: &LabelSelector,
) -> Result<BTreeMap<String, String>, String> {
    let mut requirements = authorino_selector.to_vec();
    requirements.extend(
        selector::from_label_selector(rule_selector)
            .map_err(|e| format!("the apiKey rule's selector is invalid: {e}"))?,
    );
    enforcement_labels(uid, product, &requirements).map_err(|e| {
        let authorino: Vec<String> = authorino_selector.iter().map(ToString::to_string).collect();
        format!(
            "no Secret can match both Authorino's secret label selector ({}) and the apiKey rule's selector: {e}",
            authorino.join(",")
        )
    })
}

/// Name of the enforcement Secret with metadata `meta`: `apikey-<uid>-<digest>`, where the
/// digest (CRC32 of the labels and annotations, 8 hex digits) changes whenever what Authorino
/// reads changes. Stable across processes and releases.
fn enforcement_secret_name(uid: &str, meta: &ObjectMeta) -> String {
    let canonical =
        serde_json::to_string(&(&meta.labels, &meta.annotations)).expect("string maps serialize");
    format!("apikey-{uid}-{:08x}", crc32fast::hash(canonical.as_bytes()))
}

/// Name of a key's consumer Secret in the key's namespace: `<key name>-<uid>` (the name cut to
/// fit 253 characters), unless the consumer brought their own.
pub fn consumer_secret_name(key: &APIKey) -> String {
    if let Some(own) = &key.spec.secret_ref {
        return own.name.clone();
    }
    let name = key.metadata.name.as_deref().unwrap_or_default();
    let uid = uid(key);
    let room = 253 - uid.len() - 1;
    let cut = name.len().min(room);
    format!("{}-{uid}", name[..cut].trim_end_matches(['-', '.']))
}

/// The desired enforcement Secret for `key` holding `value`.
pub fn enforcement_secret(key: &APIKey, target: &Enforcement, value: &ApiKeyValue) -> Secret {
    let mut annotations = BTreeMap::from([
        (APIKEY_ANNOTATION.to_string(), key_reference(key)),
        (PLAN_ANNOTATION.to_string(), target.tier.clone()),
        (USER_ANNOTATION.to_string(), target.user_id.clone()),
    ]);
    if let Some(expires) = &target.expires_at {
        annotations.insert(EXPIRES_ANNOTATION.into(), expires.clone());
    }
    let mut metadata = ObjectMeta {
        namespace: Some(target.namespace.clone()),
        labels: Some(target.labels.clone()),
        annotations: Some(annotations),
        ..ObjectMeta::default()
    };
    metadata.name = Some(enforcement_secret_name(uid(key), &metadata));
    secret(metadata, value)
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
                (APIKEY_UID_LABEL.to_string(), uid(key).to_string()),
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

/// The desired consumer Secret for `key` holding `value`, with devportal's MAC of the value
/// ([`VALUE_MAC_ANNOTATION`], see [`crate::keys::ValueMac`]) that lets the controller take the
/// value back from it later.
pub fn vouched_consumer_secret(key: &APIKey, value: &ApiKeyValue, mac: String) -> Secret {
    let mut secret = consumer_secret(key, value);
    secret
        .metadata
        .annotations
        .get_or_insert_default()
        .insert(VALUE_MAC_ANNOTATION.into(), mac);
    secret
}

/// The MAC a consumer Secret carries for its value, if any.
pub fn value_mac(meta: &ObjectMeta) -> Option<&str> {
    meta.annotations
        .as_ref()?
        .get(VALUE_MAC_ANNOTATION)
        .map(String::as_str)
        .filter(|m| !m.is_empty())
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
/// The rotation token ([`ROTATION_ANNOTATION`]) is left out: it is the rotation's bookkeeping,
/// not something the reconcile keeps in line; so is the value's MAC ([`VALUE_MAC_ANNOTATION`]),
/// which depends on the value the cache does not keep (the cache notes only whether there is one,
/// and the reconcile compares it on the live Secret, see [`is_exactly`]).
pub fn metadata_digest(meta: &ObjectMeta) -> u64 {
    let empty = BTreeMap::new();
    crate::digest::digest(&(
        meta.labels.as_ref().unwrap_or(&empty),
        kept_annotations(meta),
    ))
}

/// The annotations compared by digest: all but [`ROTATION_ANNOTATION`] and
/// [`VALUE_MAC_ANNOTATION`].
fn kept_annotations(meta: &ObjectMeta) -> BTreeMap<&String, &String> {
    meta.annotations
        .iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != ROTATION_ANNOTATION && k.as_str() != VALUE_MAC_ANNOTATION)
        .collect()
}

/// A hash of a Secret's type and data, keyed per process (SipHash with a random key), so the
/// cache can tell whether two Secrets hold the same thing without keeping the key value.
pub fn content_digest(secret: &Secret) -> u64 {
    use std::hash::BuildHasher;
    static KEY: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let data: Option<BTreeMap<&String, &Vec<u8>>> = secret
        .data
        .as_ref()
        .map(|d| d.iter().map(|(k, v)| (k, &v.0)).collect());
    KEY.get_or_init(Default::default)
        .hash_one((&secret.type_, data))
}

/// Whether a devportal Secret carries exactly the labels and annotations of `desired`: nothing
/// missing, nothing changed, nothing added (the controller owns the whole object), the rotation
/// token aside.
pub fn metadata_matches(actual: &ObjectMeta, desired: &ObjectMeta) -> bool {
    let same = |a: &Option<BTreeMap<String, String>>, b: &Option<BTreeMap<String, String>>| {
        a.as_ref().filter(|m| !m.is_empty()) == b.as_ref().filter(|m| !m.is_empty())
    };
    same(&actual.labels, &desired.labels) && kept_annotations(actual) == kept_annotations(desired)
}

/// Whether a live Secret is exactly `desired`: metadata (the value's MAC included), type and data.
pub fn is_exactly(actual: &Secret, desired: &Secret) -> bool {
    metadata_matches(&actual.metadata, &desired.metadata)
        && value_mac(&actual.metadata) == value_mac(&desired.metadata)
        && actual.type_ == desired.type_
        && actual.data == desired.data
        && actual.string_data.is_none()
}

#[cfg(test)]
mod tests;
