//! The form in which the controller caches APIKeyRequests.
//!
//! The controller writes every APIKeyRequest itself and reads one back only to tell whether it
//! is still what it would write, whose key it mirrors and since when its conditions hold. A full
//! APIKeyRequest in the watch cache also holds its managed fields, five condition messages and the
//! requester's free text; at ten thousand keys that was half of the controller's memory.
//! [`CachedRequest`] is what deserialization of an APIKeyRequest produces for the controller's
//! watch: the metadata the controller reads, the key it mirrors, and the spec and status folded
//! into digests (as [`super::cached_key::CachedKey`] does for APIKeys).

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::ObjectMeta;
use serde::Deserialize;

use crate::names::APIKEY_UID_LABEL;
use crate::resources::{
    APIKeyPhase, APIKeyRef, APIKeyRequest, APIKeyRequestSpec, APIKeyRequestStatus,
};

/// An APIKeyRequest as the controller caches it. Deserializes from an APIKeyRequest.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(from = "APIKeyRequest")]
pub struct CachedRequest {
    /// Name, namespace, uid and resourceVersion; nothing else.
    metadata: ObjectMeta,
    /// The value of its [`APIKEY_UID_LABEL`] (kept apart: a label map costs a tree node of
    /// half a kilobyte per request).
    key_uid: Option<Box<str>>,
    api_key_ref: APIKeyRef,
    spec_digest: u64,
    status: Option<StatusDigest>,
}

/// What the controller needs to know of a request's status.
#[derive(Clone, Debug, PartialEq)]
struct StatusDigest {
    phase: Option<Cow<'static, str>>,
    conditions: Box<[CachedCondition]>,
    /// [`status_digest`] of the whole status.
    digest: u64,
}

/// A condition's type, whether it holds, and since when.
#[derive(Clone, Debug, PartialEq)]
struct CachedCondition {
    type_: Cow<'static, str>,
    holds: bool,
    since: Timestamp,
}

/// `name` without an allocation of its own when it is one of the phase names (every request
/// condition type and phase the controller writes is one).
fn shared(name: String) -> Cow<'static, str> {
    APIKeyPhase::ALL
        .iter()
        .map(|phase| phase.as_str())
        .find(|known| *known == name)
        .map_or(Cow::Owned(name), Cow::Borrowed)
}

impl From<APIKeyRequest> for CachedRequest {
    fn from(request: APIKeyRequest) -> Self {
        let APIKeyRequest {
            metadata,
            spec,
            status,
            ..
        } = request;
        Self {
            metadata: ObjectMeta {
                name: metadata.name,
                namespace: metadata.namespace,
                uid: metadata.uid,
                resource_version: metadata.resource_version,
                ..ObjectMeta::default()
            },
            key_uid: metadata
                .labels
                .and_then(|mut labels| labels.remove(APIKEY_UID_LABEL))
                .map(String::into_boxed_str),
            spec_digest: spec_digest(&spec),
            api_key_ref: spec.api_key_ref,
            status: status.map(|status| StatusDigest {
                digest: status_digest(&status),
                phase: status.phase.map(shared),
                conditions: status
                    .conditions
                    .into_iter()
                    .map(|c| CachedCondition {
                        holds: c.status == "True",
                        since: c.last_transition_time.0,
                        type_: shared(c.type_),
                    })
                    .collect(),
            }),
        }
    }
}

impl CachedRequest {
    /// Its resourceVersion.
    pub fn resource_version(&self) -> Option<String> {
        self.metadata.resource_version.clone()
    }

    /// The APIKey it mirrors, as its spec names it.
    pub fn api_key_ref(&self) -> &APIKeyRef {
        &self.api_key_ref
    }

    /// The uid of the APIKey it mirrors, as its label says.
    pub fn key_uid(&self) -> Option<&str> {
        self.key_uid.as_deref()
    }

    /// Whether its spec is exactly `spec`.
    pub fn spec_is(&self, spec: &APIKeyRequestSpec) -> bool {
        self.spec_digest == spec_digest(spec)
    }

    /// The phase its status reports.
    pub fn phase(&self) -> Option<&str> {
        self.status.as_ref().and_then(|s| s.phase.as_deref())
    }

    /// Its conditions with type, status and transition time (reasons and messages are not
    /// kept): what [`crate::conditions::merge`] needs to keep transition times.
    pub fn conditions(&self) -> Vec<Condition> {
        self.status
            .iter()
            .flat_map(|s| &s.conditions)
            .map(|c| Condition {
                type_: c.type_.to_string(),
                status: if c.holds { "True" } else { "False" }.into(),
                last_transition_time: Time(c.since),
                reason: String::new(),
                message: String::new(),
                observed_generation: None,
            })
            .collect()
    }

    /// Whether its status says what `status` says (condition timestamps aside: a status built
    /// with [`CachedRequest::conditions`] keeps the stored ones while the conditions hold).
    pub fn status_is(&self, status: &APIKeyRequestStatus) -> bool {
        self.status
            .as_ref()
            .is_some_and(|s| s.digest == status_digest(status))
    }
}

cached_form_of!(CachedRequest, APIKeyRequest);

/// A hash of a request spec as it serializes.
fn spec_digest(spec: &APIKeyRequestSpec) -> u64 {
    crate::digest::digest(&serde_json::to_string(spec).unwrap_or_default())
}

/// A hash of a request status without its condition timestamps: two statuses with the same
/// digest say the same.
pub fn status_digest(status: &APIKeyRequestStatus) -> u64 {
    let mut status = status.clone();
    for condition in &mut status.conditions {
        condition.last_transition_time = Time(Timestamp::UNIX_EPOCH);
    }
    crate::digest::digest(&serde_json::to_string(&status).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource;
    use serde_json::json;

    fn served() -> serde_json::Value {
        json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1",
            "kind": "APIKeyRequest",
            "metadata": {
                "name": "k-0a1b2c3d", "namespace": "owners", "uid": "r-1",
                "resourceVersion": "42",
                "labels": {APIKEY_UID_LABEL: "u-1", "team": "a"},
                "annotations": {"note": "kept out"},
                "managedFields": [{"manager": "devportal-controller", "operation": "Apply"}]
            },
            "spec": {"apiProductRef": {"name": "toys"}, "planTier": "gold",
                     "useCase": "a long story", "requestedBy": {"userId": "consumer"},
                     "apiKeyRef": {"name": "k", "namespace": "team"}},
            "status": {
                "phase": "Approved", "approved": true, "reviewedBy": "owner",
                "conditions": [
                    {"type": "Pending", "status": "False", "reason": "NotInPhase",
                     "message": "the request is Approved", "lastTransitionTime": "2026-01-01T00:00:01Z"},
                    {"type": "Approved", "status": "True", "reason": "Approved",
                     "message": "approved by owner", "lastTransitionTime": "2026-01-01T00:00:02Z"}
                ]
            }
        })
    }

    #[test]
    fn keeps_what_the_inbox_reads_and_recognises_its_spec_and_status() {
        let full: APIKeyRequest = serde_json::from_value(served()).unwrap();
        let cached: CachedRequest = serde_json::from_value(served()).unwrap();
        assert_eq!(cached.key_uid(), Some("u-1"));
        assert_eq!(cached.api_key_ref(), &full.spec.api_key_ref);
        assert_eq!(cached.phase(), Some("Approved"));
        assert!(cached.spec_is(&full.spec));
        assert!(cached.status_is(full.status.as_ref().unwrap()));

        let mut other_spec = full.spec.clone();
        other_spec.use_case = Some("another story".into());
        assert!(!cached.spec_is(&other_spec));
        let mut other_status = full.status.clone().unwrap();
        other_status.reviewed_by = Some("someone else".into());
        assert!(!cached.status_is(&other_status));

        let meta = cached.meta();
        assert_eq!(meta.resource_version.as_deref(), Some("42"));
        assert_eq!(meta.uid.as_deref(), Some("r-1"));
        assert!(meta.managed_fields.is_none() && meta.annotations.is_none());
        assert!(meta.labels.is_none());
        assert_eq!(CachedRequest::plural(&()), "apikeyrequests");
    }

    #[test]
    fn conditions_keep_their_transition_times() {
        let full: APIKeyRequest = serde_json::from_value(served()).unwrap();
        let cached: CachedRequest = serde_json::from_value(served()).unwrap();
        let kept: Vec<_> = cached
            .conditions()
            .into_iter()
            .map(|c| (c.type_, c.status, c.last_transition_time))
            .collect();
        let served: Vec<_> = full
            .status
            .unwrap()
            .conditions
            .into_iter()
            .map(|c| (c.type_, c.status, c.last_transition_time))
            .collect();
        assert_eq!(kept, served);
    }

    #[test]
    fn a_request_without_status_has_none() {
        let mut served = served();
        served.as_object_mut().unwrap().remove("status");
        let cached: CachedRequest = serde_json::from_value(served).unwrap();
        assert_eq!(cached.phase(), None);
        assert!(cached.conditions().is_empty());
        assert!(!cached.status_is(&APIKeyRequestStatus::default()));
    }
}
