//! The form in which the controller caches APIKeyRequests.
//!
//! The controller writes every APIKeyRequest itself and reads one back only to tell whether it
//! is still what it would write, whose key it mirrors and since when its conditions hold. A full
//! APIKeyRequest in the watch cache also holds its managed fields, five condition messages and the
//! requester's free text; at ten thousand keys that was half of the controller's memory.
//! [`CachedRequest`] is what deserialization of an APIKeyRequest produces for the controller's
//! watch: the metadata the controller reads, and a [`RequestSummary`] — the key it mirrors, the
//! spec and status folded into digests (as [`super::cached_key::CachedKey`] does for APIKeys).
//! The controller's request cache keeps the summary with the uid and resourceVersion, not the
//! whole `ObjectMeta`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::ObjectMeta;
use serde::Deserialize;

use crate::names::APIKEY_UID_LABEL;
use crate::resources::{
    APIKeyPhase, APIKeyRef, APIKeyRequest, APIKeyRequestSpec, APIKeyRequestStatus,
};

/// An APIKeyRequest as the controller's watch delivers it. Deserializes from an APIKeyRequest.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(from = "APIKeyRequest")]
pub struct CachedRequest {
    /// Name, namespace, uid and resourceVersion; nothing else.
    metadata: ObjectMeta,
    summary: RequestSummary,
}

/// What the controller knows of a request besides its identity: the key it mirrors, and its
/// spec and status folded into digests.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestSummary {
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
    /// The phase, when it is one devportal writes.
    phase: Option<APIKeyPhase>,
    /// The phase conditions: which holds, and since when (a condition of another type is not
    /// kept: the controller writes the whole status, without it).
    conditions: Box<[(APIKeyPhase, bool, Timestamp)]>,
    /// [`status_digest`] of the whole status.
    digest: u64,
}

/// The phase called `name`, when there is one.
fn phase_named(name: &str) -> Option<APIKeyPhase> {
    APIKeyPhase::ALL
        .into_iter()
        .find(|phase| phase.as_str() == name)
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
            summary: RequestSummary {
                key_uid: metadata
                    .labels
                    .and_then(|mut labels| labels.remove(APIKEY_UID_LABEL))
                    .map(String::into_boxed_str),
                spec_digest: spec_digest(&spec),
                api_key_ref: spec.api_key_ref,
                status: status.map(|status| StatusDigest {
                    digest: status_digest(&status),
                    phase: status.phase.as_deref().and_then(phase_named),
                    conditions: status
                        .conditions
                        .iter()
                        .filter_map(|c| {
                            let phase = phase_named(&c.type_)?;
                            Some((phase, c.status == "True", c.last_transition_time.0))
                        })
                        .collect(),
                }),
            },
        }
    }
}

impl CachedRequest {
    /// What the controller knows of it besides its identity.
    pub fn summary(&self) -> &RequestSummary {
        &self.summary
    }

    /// Its metadata (name, namespace, uid, resourceVersion) and its summary, apart.
    pub fn into_parts(self) -> (ObjectMeta, RequestSummary) {
        (self.metadata, self.summary)
    }
}

impl RequestSummary {
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

    /// The phase its status reports, when it is one devportal writes.
    pub fn phase(&self) -> Option<APIKeyPhase> {
        self.status.as_ref().and_then(|s| s.phase)
    }

    /// Its conditions with type, status and transition time (reasons and messages are not
    /// kept): what [`crate::conditions::merge`] needs to keep transition times.
    pub fn conditions(&self) -> Vec<Condition> {
        self.status
            .iter()
            .flat_map(|s| &s.conditions)
            .map(|(phase, holds, since)| Condition {
                type_: phase.as_str().into(),
                status: if *holds { "True" } else { "False" }.into(),
                last_transition_time: Time(*since),
                reason: String::new(),
                message: String::new(),
                observed_generation: None,
            })
            .collect()
    }

    /// Whether its status says what `status` says (condition timestamps aside: a status built
    /// with [`RequestSummary::conditions`] keeps the stored ones while the conditions hold).
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
        let summary = cached.summary();
        assert_eq!(summary.key_uid(), Some("u-1"));
        assert_eq!(summary.api_key_ref(), &full.spec.api_key_ref);
        assert_eq!(summary.phase(), Some(APIKeyPhase::Approved));
        assert!(summary.spec_is(&full.spec));
        assert!(summary.status_is(full.status.as_ref().unwrap()));

        let mut other_spec = full.spec.clone();
        other_spec.use_case = Some("another story".into());
        assert!(!summary.spec_is(&other_spec));
        let mut other_status = full.status.clone().unwrap();
        other_status.reviewed_by = Some("someone else".into());
        assert!(!summary.status_is(&other_status));

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
            .summary()
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
        assert_eq!(cached.summary().phase(), None);
        assert!(cached.summary().conditions().is_empty());
        assert!(!cached.summary().status_is(&APIKeyRequestStatus::default()));
    }
}
