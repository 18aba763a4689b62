//! `APIKeyApproval`: an owner's decision on an `APIKeyRequest` in the same namespace, with the
//! field names of the Kuadrant Backstage plugin. Its decision may be changed (the console plugin
//! denies an active key by updating its approval); the admission webhook re-stamps reviewer and
//! time on every change and keeps the reviews it replaced in the
//! [`PREVIOUS_REVIEWS_ANNOTATION`]. The controller applies the latest review of a request to its
//! APIKey and says in `status` whether this one counts.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, MicroTime};
use kube::{CustomResource, KubeSchema, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{MULTI_LINE, SINGLE_LINE};
use crate::names::PREVIOUS_REVIEWS_ANNOTATION;

/// How many replaced reviews the [`PREVIOUS_REVIEWS_ANNOTATION`] keeps (newest first).
pub const PREVIOUS_REVIEWS_KEPT: usize = 10;
/// How much of a replaced review's reason the [`PREVIOUS_REVIEWS_ANNOTATION`] keeps.
const PREVIOUS_REASON_CHARS: usize = 256;

/// `APIKeyApproval.spec`: which request, the decision, and who made it when.
// Each printcolumn repeats `type_`; clippy reads those as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "devportal.kuadrant.io",
    version = "v1alpha1",
    kind = "APIKeyApproval",
    plural = "apikeyapprovals",
    singular = "apikeyapproval",
    shortname = "apika",
    category = "devportal",
    namespaced,
    status = "APIKeyApprovalStatus",
    derive = "PartialEq",
    doc = "An owner's review of an APIKeyRequest in the same namespace. devportal stamps \
           reviewedBy and reviewedAt on every change, keeps the reviews a change replaced in the \
           devportal.kuadrant.io/previous-reviews annotation, applies the latest review of the \
           request to its APIKey and says in status (condition Valid) whether this one counts.",
    printcolumn(
        name = "Request",
        type_ = "string",
        json_path = ".spec.apiKeyRequestRef.name"
    ),
    printcolumn(name = "Approved", type_ = "boolean", json_path = ".spec.approved"),
    printcolumn(name = "Reviewer", type_ = "string", json_path = ".spec.reviewedBy"),
    printcolumn(
        name = "Valid",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Valid\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct APIKeyApprovalSpec {
    /// The APIKeyRequest reviewed, in this namespace.
    pub api_key_request_ref: RequestNameRef,
    /// `true` approves, `false` denies (or revokes).
    pub approved: bool,
    /// Who decided; stamped by the admission webhook from the caller's identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512), pattern(SINGLE_LINE))]
    pub reviewed_by: Option<String>,
    /// When they decided, to the microsecond; stamped by the admission webhook on every change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_at: Option<MicroTime>,
    /// Why, in a word or a line, for the consumer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024), pattern(MULTI_LINE))]
    pub reason: Option<String>,
    /// A longer note for the consumer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096), pattern(MULTI_LINE))]
    pub message: Option<String>,
}

/// An `APIKeyRequest` by name, in the referring object's namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestNameRef {
    /// Name of the APIKeyRequest.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// `APIKeyApproval.status`: whether this review is the one that counts for its request (a
/// superset of upstream's fields).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct APIKeyApprovalStatus {
    /// The `metadata.generation` (the review) this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Valid`: True while this review is the one its APIKey carries; False, with the reason
    /// (`Superseded`, `ApprovalOutdated`), when it is not applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// A review an update of an APIKeyApproval replaced, as kept in its
/// [`PREVIOUS_REVIEWS_ANNOTATION`].
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PreviousReview {
    /// The decision.
    pub approved: bool,
    /// Who made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_by: Option<String>,
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_at: Option<MicroTime>,
    /// Why (cut to 256 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl APIKeyApproval {
    /// The reviews updates replaced, newest first, as the [`PREVIOUS_REVIEWS_ANNOTATION`] holds
    /// them (none when absent or unreadable).
    pub fn previous_reviews(&self) -> Vec<PreviousReview> {
        self.annotations()
            .get(PREVIOUS_REVIEWS_ANNOTATION)
            .and_then(|history| serde_json::from_str(history).ok())
            .unwrap_or_default()
    }

    /// The [`PREVIOUS_REVIEWS_ANNOTATION`] after an update replaces this approval's review: its
    /// review first, then the ones it kept, at most [`PREVIOUS_REVIEWS_KEPT`].
    pub fn history_after_update(&self) -> String {
        let replaced = PreviousReview {
            approved: self.spec.approved,
            reviewed_by: self.spec.reviewed_by.clone(),
            reviewed_at: self.spec.reviewed_at.clone(),
            reason: self
                .spec
                .reason
                .as_ref()
                .map(|r| r.chars().take(PREVIOUS_REASON_CHARS).collect()),
        };
        let history: Vec<PreviousReview> = std::iter::once(replaced)
            .chain(self.previous_reviews())
            .take(PREVIOUS_REVIEWS_KEPT)
            .collect();
        serde_json::to_string(&history).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval(approved: bool, at: &str) -> APIKeyApproval {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKeyApproval",
            "metadata": {"name": "r-approval", "namespace": "apps"},
            "spec": {"apiKeyRequestRef": {"name": "r"}, "approved": approved,
                     "reviewedBy": "owner", "reviewedAt": at, "reason": "x".repeat(2000)}
        }))
        .unwrap()
    }

    #[test]
    fn the_history_keeps_the_latest_replaced_reviews_newest_first_and_bounded() {
        let mut current = approval(true, "2026-01-01T00:00:00Z");
        for i in 1..=15 {
            let history = current.history_after_update();
            current = approval(i % 2 == 1, &format!("2026-01-01T00:00:{i:02}.5Z"));
            current
                .annotations_mut()
                .insert(PREVIOUS_REVIEWS_ANNOTATION.into(), history);
        }
        let history = current.previous_reviews();
        assert_eq!(history.len(), PREVIOUS_REVIEWS_KEPT);
        assert_eq!(
            serde_json::to_value(&history[0].reviewed_at).unwrap(),
            "2026-01-01T00:00:14.500000Z"
        );
        assert!(!history[0].approved);
        assert_eq!(history[0].reason.as_ref().unwrap().len(), 256);
        // Second-precision times of earlier releases read back.
        let old = approval(true, "2026-01-01T00:00:00Z");
        assert_eq!(
            old.spec.reviewed_at.unwrap().0,
            "2026-01-01T00:00:00Z".parse().unwrap()
        );
    }
}
