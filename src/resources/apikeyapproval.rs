//! `APIKeyApproval`: an owner's decision on an `APIKeyRequest` in the same namespace, with the
//! field names of the Kuadrant Backstage plugin. Immutable once created; the controller applies
//! it to the request's APIKey.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{MULTI_LINE, SINGLE_LINE};

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
    derive = "PartialEq",
    doc = "An owner's review of an APIKeyRequest in the same namespace. Immutable; devportal \
           stamps reviewedBy and reviewedAt and applies the review to the request's APIKey.",
    printcolumn(
        name = "Request",
        type_ = "string",
        json_path = ".spec.apiKeyRequestRef.name"
    ),
    printcolumn(name = "Approved", type_ = "boolean", json_path = ".spec.approved"),
    printcolumn(name = "Reviewer", type_ = "string", json_path = ".spec.reviewedBy"),
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
    /// When they decided; stamped by the admission webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_at: Option<Time>,
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
