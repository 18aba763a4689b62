//! `APIKeyRequest`: the owner's view of one APIKey, kept by the controller in the product's
//! namespace (the owner's inbox), with the field names of the Kuadrant Backstage plugin.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::apikey::RequestedBy;
use super::common::{MULTI_LINE, SINGLE_LINE};

/// `APIKeyRequest.spec`: the request as the consumer made it, mirrored from its APIKey.
// Each printcolumn repeats `type_`; clippy reads those as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "devportal.kuadrant.io",
    version = "v1alpha1",
    kind = "APIKeyRequest",
    plural = "apikeyrequests",
    singular = "apikeyrequest",
    shortname = "apikr",
    category = "devportal",
    namespaced,
    status = "APIKeyRequestStatus",
    derive = "PartialEq",
    doc = "An APIKey as its product's owners review it: kept by devportal's controller in the \
           product's namespace, one per APIKey. Review it with an APIKeyApproval.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Requester",
        type_ = "string",
        json_path = ".spec.requestedBy.userId"
    ),
    printcolumn(name = "Plan", type_ = "string", json_path = ".spec.planTier"),
    printcolumn(
        name = "Key namespace",
        type_ = "string",
        json_path = ".spec.apiKeyRef.namespace"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct APIKeyRequestSpec {
    /// The product the key is for, in this namespace.
    pub api_product_ref: ProductNameRef,
    /// The tier requested.
    #[schemars(length(min = 1, max = 63), pattern(SINGLE_LINE))]
    pub plan_tier: String,
    /// Why the consumer wants access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024), pattern(MULTI_LINE))]
    pub use_case: Option<String>,
    /// Who asked, as the admission webhook stamped it on the APIKey.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<RequestedBy>,
    /// The APIKey this request mirrors.
    pub api_key_ref: APIKeyRef,
    /// When the key stops working (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
}

/// The name of an `APIProduct` in the referring object's namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductNameRef {
    /// Name of the product.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// An `APIKey` by namespace and name.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct APIKeyRef {
    /// Name of the APIKey.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the APIKey.
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
}

/// `APIKeyRequest.status`: where the key stands and the review that counts.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct APIKeyRequestStatus {
    /// The key's phase: `Pending`, `Approved`, `Denied`, `Expired` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), pattern(SINGLE_LINE))]
    pub phase: Option<String>,
    /// One condition per phase (`Approved`, `Denied`, `Pending`, `Expired`, `Failed`); exactly
    /// one is True.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Whether the review that counts approved (absent while unreviewed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved: Option<bool>,
    /// Who reviewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512), pattern(SINGLE_LINE))]
    pub reviewed_by: Option<String>,
    /// When they reviewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_at: Option<Time>,
    /// Why, as the reviewer said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024), pattern(MULTI_LINE))]
    pub reason: Option<String>,
    /// The APIKeyApproval in this namespace whose review the key carries; absent when the review
    /// was written on the APIKey directly (`spec.approval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253), pattern(SINGLE_LINE))]
    pub approval_name: Option<String>,
}
