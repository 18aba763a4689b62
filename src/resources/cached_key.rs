//! The form in which the controller caches APIKeys.
//!
//! The reconcile reads a key's spec and a little metadata, and from its status only the phase, the
//! conditions' transition times and whether the status already is what it would write. A full
//! APIKey in the watch cache also holds the limits, the authentication scheme, five condition
//! messages and a dozen more strings; at ten thousand keys that was most of the controller's
//! memory. [`CachedKey`] is what deserialization of an APIKey produces for the controller's
//! and the webhook's watch: the same object minus what no reconcile and no key count reads, with
//! the status folded into a digest. The spec is kept whole (the free-text `spec.useCase`, at most
//! 1 KiB by the schema, goes into the owner's inbox copy of the request).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::names::key_condition::READY as KEY_READY;
use crate::names::{
    EMAIL_VERIFIED_ANNOTATION, REVIEW_WITHDRAWN_ANNOTATION, ROTATION_REQUEST_ANNOTATION,
};
use crate::resources::{APIKey, APIKeyPhase, APIKeySpec, APIKeyStatus, KeyRotation};

/// An APIKey as the controller caches it. Deserializes from (and serializes as) an APIKey.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(from = "APIKey", into = "APIKey")]
pub struct CachedKey {
    metadata: ObjectMeta,
    spec: APIKeySpec,
    status: Option<StatusDigest>,
}

/// What the controller needs to know of a status it did not write in this process.
#[derive(Clone, Debug, PartialEq)]
struct StatusDigest {
    phase: Option<APIKeyPhase>,
    /// The phase conditions and `Ready`: which holds, and since when.
    conditions: Vec<(&'static str, bool, Timestamp)>,
    /// The last rotation request handled, which the next status carries on.
    rotation: Option<KeyRotation>,
    /// [`status_digest`] of the whole status.
    digest: u64,
}

impl From<APIKey> for CachedKey {
    fn from(key: APIKey) -> Self {
        let APIKey {
            metadata,
            spec,
            status,
            ..
        } = key;
        Self {
            metadata: ObjectMeta {
                name: metadata.name,
                namespace: metadata.namespace,
                uid: metadata.uid,
                resource_version: metadata.resource_version,
                generation: metadata.generation,
                creation_timestamp: metadata.creation_timestamp,
                deletion_timestamp: metadata.deletion_timestamp,
                finalizers: metadata.finalizers,
                // Of the annotations, only those the reconcile acts on: the rotation request, the
                // withdrawal of the key's review (which supersedes earlier reviews), and whether
                // the e-mail is verified (the owner's inbox copy says so).
                annotations: metadata
                    .annotations
                    .map(|mut a| {
                        [
                            ROTATION_REQUEST_ANNOTATION,
                            REVIEW_WITHDRAWN_ANNOTATION,
                            EMAIL_VERIFIED_ANNOTATION,
                        ]
                        .into_iter()
                        .filter_map(|name| a.remove_entry(name))
                        .collect::<std::collections::BTreeMap<_, _>>()
                    })
                    .filter(|kept| !kept.is_empty()),
                ..ObjectMeta::default()
            },
            spec,
            status: status.map(|status| StatusDigest {
                phase: status.phase,
                conditions: status
                    .conditions
                    .iter()
                    .filter_map(|c| {
                        let type_ = APIKeyPhase::ALL
                            .into_iter()
                            .map(APIKeyPhase::as_str)
                            .chain([KEY_READY])
                            .find(|t| *t == c.type_)?;
                        Some((type_, c.status == "True", c.last_transition_time.0))
                    })
                    .collect(),
                digest: status_digest(&status),
                rotation: status.rotation,
            }),
        }
    }
}

impl From<CachedKey> for APIKey {
    fn from(cached: CachedKey) -> Self {
        let mut key = APIKey::new(
            cached.metadata.name.as_deref().unwrap_or_default(),
            cached.spec,
        );
        key.metadata = cached.metadata;
        key
    }
}

impl CachedKey {
    /// The key's metadata and spec as an APIKey, without status.
    pub fn to_key(&self) -> APIKey {
        self.clone().into()
    }

    /// The key's spec.
    pub fn spec(&self) -> &APIKeySpec {
        &self.spec
    }

    /// Namespace of the product it asks for: the reference's, else the key's own.
    pub fn product_namespace(&self) -> Option<&str> {
        self.spec
            .product_namespace(self.metadata.namespace.as_deref())
    }

    /// The phase its status reports.
    pub fn phase(&self) -> Option<APIKeyPhase> {
        self.status.as_ref().and_then(|s| s.phase)
    }

    /// Its phase conditions and `Ready` with type, status and transition time (reasons and messages are
    /// not kept): what [`crate::conditions::merge`] needs to keep transition times.
    pub fn conditions(&self) -> Vec<Condition> {
        self.status
            .iter()
            .flat_map(|s| &s.conditions)
            .map(|(type_, holds, since)| Condition {
                type_: (*type_).into(),
                status: if *holds { "True" } else { "False" }.into(),
                last_transition_time: Time(*since),
                reason: String::new(),
                message: String::new(),
                observed_generation: None,
            })
            .collect()
    }

    /// The last rotation request its status records as handled.
    pub fn rotation(&self) -> Option<&KeyRotation> {
        self.status.as_ref().and_then(|s| s.rotation.as_ref())
    }

    /// Whether its status is exactly `status`.
    pub fn status_is(&self, status: &APIKeyStatus) -> bool {
        self.status
            .as_ref()
            .is_some_and(|s| s.digest == status_digest(status))
    }
}

cached_form_of!(CachedKey, APIKey);

/// A hash of a status as it serializes.
pub fn status_digest(status: &APIKeyStatus) -> u64 {
    crate::digest::digest(&serde_json::to_string(status).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditions::{Desired, merge};
    use kube::Resource;
    use serde_json::json;

    fn served() -> serde_json::Value {
        json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1",
            "kind": "APIKey",
            "metadata": {
                "name": "k", "namespace": "team", "uid": "u-1", "resourceVersion": "42",
                "generation": 3, "creationTimestamp": "2026-01-01T00:00:00Z",
                "finalizers": ["devportal.kuadrant.io/secrets"],
                "labels": {"team": "a"},
                "annotations": {"note": "kept out", "devportal.kuadrant.io/rotation-request": "t1"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]
            },
            "spec": {"apiProductRef": {"name": "toys"}, "planTier": "gold",
                     "requestedBy": {"userId": "consumer"}, "useCase": "a long story"},
            "status": {
                "observedGeneration": 3, "phase": "Approved",
                "conditions": [
                    {"type": "Pending", "status": "False", "reason": "NotInPhase",
                     "message": "the key is Approved", "lastTransitionTime": "2026-01-01T00:00:01Z"},
                    {"type": "Approved", "status": "True", "reason": "AutoApproved",
                     "message": "approves keys automatically", "lastTransitionTime": "2026-01-01T00:00:01Z"}
                ],
                "secretRef": {"name": "k-apikey", "key": "api_key"},
                "apiHostname": "toys.example.com",
                "limits": {"daily": 100},
                "rotation": {"request": "t0", "rotatedAt": "2026-01-02T00:00:00Z"}
            }
        })
    }

    #[test]
    fn keeps_what_reconciles_read_and_recognises_its_status() {
        let full: APIKey = serde_json::from_value(served()).unwrap();
        let cached: CachedKey = serde_json::from_value(served()).unwrap();
        assert_eq!(cached.phase(), Some(APIKeyPhase::Approved));
        assert!(cached.status_is(full.status.as_ref().unwrap()));
        assert_eq!(cached.rotation().map(|r| r.request.as_str()), Some("t0"));
        let mut changed = full.status.clone().unwrap();
        changed.api_hostname = Some("other.example.com".into());
        assert!(!cached.status_is(&changed));

        let key = cached.to_key();
        assert_eq!(key.metadata.uid.as_deref(), Some("u-1"));
        assert_eq!(key.metadata.generation, Some(3));
        assert_eq!(key.metadata.finalizers, full.metadata.finalizers);
        assert_eq!(
            key.spec.use_case.as_deref(),
            Some("a long story"),
            "the reviewer's free text goes into the owner's inbox"
        );
        assert_eq!(key.spec.plan_tier, full.spec.plan_tier);
        assert_eq!(key.spec.requested_by, full.spec.requested_by);
        assert!(key.status.is_none());
        assert!(key.metadata.managed_fields.is_none() && key.metadata.labels.is_none());
        assert_eq!(
            key.metadata.annotations,
            Some([(ROTATION_REQUEST_ANNOTATION.to_string(), "t1".to_string())].into()),
            "of the annotations only the rotation request (and a review's withdrawal) is cached"
        );
        let mut withdrawn = served();
        withdrawn["metadata"]["annotations"][REVIEW_WITHDRAWN_ANNOTATION] =
            json!("2026-01-03T00:00:00.000001Z");
        let cached: CachedKey = serde_json::from_value(withdrawn).unwrap();
        assert_eq!(
            cached.to_key().metadata.annotations.unwrap()[REVIEW_WITHDRAWN_ANNOTATION],
            "2026-01-03T00:00:00.000001Z",
            "the withdrawal of the key's review is cached: it supersedes earlier reviews"
        );
        assert_eq!(cached.meta().name.as_deref(), Some("k"));
        assert_eq!(CachedKey::plural(&()), "apikeys");
        assert_eq!(
            CachedKey::api_version(&()),
            "devportal.kuadrant.io/v1alpha1"
        );
    }

    #[test]
    fn transition_times_survive_the_digest() {
        let full: APIKey = serde_json::from_value(served()).unwrap();
        let cached: CachedKey = serde_json::from_value(served()).unwrap();
        let later: Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
        let desired = vec![
            Desired::fails("Pending", "NotInPhase", "the key is Approved"),
            Desired::holds("Approved", "AutoApproved", "approves keys automatically"),
        ];
        let from_digest = merge(&cached.conditions(), desired.clone(), Some(3), later);
        let from_full = merge(&full.status.unwrap().conditions, desired, Some(3), later);
        assert_eq!(from_digest, from_full);
    }

    #[test]
    fn a_key_without_status_has_none() {
        let mut served = served();
        served.as_object_mut().unwrap().remove("status");
        let cached: CachedKey = serde_json::from_value(served).unwrap();
        assert_eq!(cached.phase(), None);
        assert!(cached.conditions().is_empty());
        assert!(!cached.status_is(&APIKeyStatus::default()));
    }
}
