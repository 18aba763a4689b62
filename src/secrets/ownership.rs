//! Whose Secret is this: the marks by which the controller knows a Secret is its own for one
//! particular APIKey. A Secret without them is never read, written, adopted or deleted.
//!
//! - enforcement Secret: devportal's managed and role labels, the APIKey annotation, and the
//!   [`APIKEY_UID_LABEL`] with the key's uid;
//! - consumer Secret: the same labels and annotation, and a controlling owner reference to the
//!   APIKey with its uid (which also makes the garbage collector remove it with the key).
//!
//! Marks are not enough: anyone who may create a Secret in their own namespace can copy them. So
//! the controller also looks only where it writes ([`sits_where_written`]): enforcement Secrets in
//! the enforcement namespace, consumer Secrets in the key's namespace.
//!
//! Secrets written before names derived from uids (`apikey-<ns>-<name>-<crc32>`, `<name>-apikey`
//! in the key's namespace) are recognised where they sit in those places: the consumer copy by
//! its owner reference as above, the enforcement Secret — which had no uid mark — by its exact old
//! name, labels and annotation, in the enforcement namespace only (the old layout's Secrets in an
//! AuthPolicy's namespace are left alone, see docs/operator-guide.md).

use kube::api::ObjectMeta;

use super::{Role, key_reference};
use crate::names::{APIKEY_ANNOTATION, APIKEY_UID_LABEL, MANAGED_LABEL, ROLE_LABEL};
use crate::resources::APIKey;

/// The role of a devportal Secret, from its [`ROLE_LABEL`].
pub fn role_of(meta: &ObjectMeta) -> Option<Role> {
    match meta.labels.as_ref()?.get(ROLE_LABEL)?.as_str() {
        "enforcement" => Some(Role::Enforcement),
        "consumer" => Some(Role::Consumer),
        _ => None,
    }
}

/// `namespace/name` of the APIKey a devportal Secret says it belongs to, from its
/// [`APIKEY_ANNOTATION`]. Only a hint for routing events: ownership is [`belongs_to`].
pub fn owner_reference(meta: &ObjectMeta) -> Option<&str> {
    meta.annotations
        .as_ref()?
        .get(APIKEY_ANNOTATION)
        .map(String::as_str)
        .filter(|r| r.split_once('/').is_some())
}

/// The uid of the APIKey that the Secret's ownership mark names: the [`APIKEY_UID_LABEL`] of an
/// enforcement Secret, the controlling APIKey owner reference of a consumer Secret.
pub fn owner_uid(meta: &ObjectMeta) -> Option<&str> {
    match role_of(meta)? {
        Role::Enforcement => meta
            .labels
            .as_ref()?
            .get(APIKEY_UID_LABEL)
            .map(String::as_str),
        Role::Consumer => meta
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true) && o.kind == "APIKey")
            .map(|o| o.uid.as_str()),
    }
}

/// The uid of the APIKey an enforcement Secret is devportal's own for: managed, of the enforcement
/// role, naming a key in its annotation and carrying the key's uid in [`APIKEY_UID_LABEL`]. `None`
/// for anything else (consumer copies, the old layout's unmarked Secrets, someone else's Secret).
pub fn enforcement_uid(meta: &ObjectMeta) -> Option<&str> {
    let managed = meta.labels.as_ref()?.get(MANAGED_LABEL)? == "true";
    (managed && role_of(meta)? == Role::Enforcement && owner_reference(meta).is_some())
        .then(|| owner_uid(meta))
        .flatten()
        .filter(|uid| !uid.is_empty())
}

/// Whether a Secret of `role` in `namespace` sits where devportal writes that role's Secrets for
/// `key`: an enforcement Secret in the enforcement namespace (which tenants cannot write), a
/// consumer Secret in the key's own namespace. A Secret anywhere else is nobody's business of the
/// controller's, whatever marks it carries: never read for a value, written or deleted.
pub fn sits_where_written(
    namespace: &str,
    role: Role,
    key: &APIKey,
    enforcement_namespace: &str,
) -> bool {
    match role {
        Role::Enforcement => namespace == enforcement_namespace,
        Role::Consumer => key.metadata.namespace.as_deref() == Some(namespace),
    }
}

/// Name of a key's enforcement Secret as devportal named it before names derived from uids.
pub fn legacy_enforcement_name(key: &APIKey) -> String {
    let reference = key_reference(key);
    let hash = crc32fast::hash(reference.as_bytes());
    let readable = format!("apikey-{}", reference.replace('/', "-"));
    let cut = readable.len().min(253 - 9);
    format!(
        "{}-{hash:08x}",
        readable[..cut].trim_end_matches(['-', '.'])
    )
}

/// Name of a key's consumer Secret as devportal named it before names derived from uids.
pub fn legacy_consumer_name(key: &APIKey) -> String {
    let name = key.metadata.name.as_deref().unwrap_or_default();
    let candidate = format!("{name}-apikey");
    if candidate.len() <= 253 {
        candidate
    } else {
        let hash = crc32fast::hash(name.as_bytes());
        let cut = name.len().min(253 - 16);
        format!(
            "{}-{hash:08x}-apikey",
            name[..cut].trim_end_matches(['-', '.'])
        )
    }
}

/// Whether the Secret with metadata `meta` is devportal's own for `key`: managed, with a role,
/// the key's annotation and the key's uid as its ownership mark (or, for an enforcement Secret
/// of the old layout, exactly the old name).
pub fn belongs_to(meta: &ObjectMeta, key: &APIKey) -> bool {
    let managed = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_LABEL))
        .is_some_and(|v| v == "true");
    let Some(role) = role_of(meta) else {
        return false;
    };
    if !managed || owner_reference(meta) != Some(key_reference(key).as_str()) {
        return false;
    }
    let key_uid = key.metadata.uid.as_deref().filter(|u| !u.is_empty());
    match (owner_uid(meta), key_uid) {
        (Some(mark), Some(uid)) => mark == uid,
        (None, Some(_)) => {
            role == Role::Enforcement
                && meta.name.as_deref() == Some(legacy_enforcement_name(key).as_str())
        }
        _ => false,
    }
}
