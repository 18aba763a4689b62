//! `APIKey`: a consumer's request for access to an `APIProduct` at a plan tier.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, MicroTime, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;

use super::common::{MULTI_LINE, SINGLE_LINE};
use serde::{Deserialize, Serialize};

use super::common::Limits;
use super::kuadrant::{ApiKeyAuth, Credentials};

/// `APIKey.spec`: the consumer's request and, once reviewed, the review.
// Each printcolumn repeats `type_`; clippy reads those as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "devportal.kuadrant.io",
    version = "v1alpha1",
    kind = "APIKey",
    plural = "apikeys",
    singular = "apikey",
    shortname = "apik",
    category = "devportal",
    namespaced,
    status = "APIKeyStatus",
    derive = "PartialEq",
    doc = "A consumer's request for an API key to an APIProduct at a plan tier.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Product",
        type_ = "string",
        json_path = ".spec.apiProductRef.name"
    ),
    printcolumn(name = "Plan", type_ = "string", json_path = ".spec.planTier"),
    printcolumn(
        name = "User",
        type_ = "string",
        json_path = ".spec.requestedBy.userId"
    ),
    printcolumn(name = "Expires", type_ = "string", json_path = ".spec.expiresAt"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct APIKeySpec {
    /// The product the key is for.
    pub api_product_ref: APIProductRef,
    /// The tier requested; one of the product's `status.discoveredPlans[].tier`.
    #[schemars(length(min = 1, max = 63), pattern(SINGLE_LINE))]
    pub plan_tier: String,
    /// Why the consumer wants access, for the reviewer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024), pattern(MULTI_LINE))]
    pub use_case: Option<String>,
    /// Who asked; stamped by the admission webhook from the request's identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<RequestedBy>,
    /// When the key stops working (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
    /// Bring your own key: a Secret in this namespace holding `api_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalSecretRef>,
    /// The review, written by an owner or admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
}

/// Reference to an `APIProduct`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct APIProductRef {
    /// Name of the product.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the product; the key's own namespace when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub namespace: Option<String>,
}

/// The identity that requested a key.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestedBy {
    /// Kubernetes username of the requester.
    #[schemars(length(max = 512), pattern(SINGLE_LINE))]
    pub user_id: String,
    /// Contact address of the requester.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256), pattern(SINGLE_LINE))]
    pub email: Option<String>,
}

/// A Secret in the key's own namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalSecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// An owner's or admin's decision on a key request.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// `true` approves, `false` rejects (or revokes).
    pub approved: bool,
    /// Why, for the consumer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024), pattern(MULTI_LINE))]
    pub reason: Option<String>,
    /// Who decided; stamped by the admission webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512), pattern(SINGLE_LINE))]
    pub reviewed_by: Option<String>,
    /// When they decided, to the microsecond; stamped by the admission webhook. Whole seconds, as
    /// earlier releases stamped, read as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_at: Option<MicroTime>,
    /// The uid of the APIProduct reviewed; stamped by the admission webhook. An approval of a
    /// product since deleted (and perhaps re-created under the same name) does not count.
    #[serde(
        default,
        rename = "productUID",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = 128), pattern(SINGLE_LINE))]
    pub product_uid: Option<String>,
    /// The plan tier reviewed; stamped by the admission webhook. An approval of another tier than
    /// `spec.planTier` does not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63), pattern(SINGLE_LINE))]
    pub plan_tier: Option<String>,
}

impl Approval {
    /// The approval of an APIProduct in `approvalMode: automatic`, recorded in a key's
    /// `spec.approval` under reviewer [`AUTOMATIC_REVIEWER`](crate::names::AUTOMATIC_REVIEWER):
    /// by the mutating webhook when the key is created, or by the controller for a key the
    /// webhook did not stamp. It binds the product's uid and the key's tier like any review.
    pub fn automatic(
        product_namespace: &str,
        product_name: &str,
        product_uid: Option<String>,
        tier: &str,
        at: MicroTime,
    ) -> Self {
        Self {
            approved: true,
            reason: Some(format!(
                "APIProduct {product_namespace}/{product_name} approves keys automatically"
            )),
            reviewed_by: Some(crate::names::AUTOMATIC_REVIEWER.into()),
            reviewed_at: Some(at),
            product_uid,
            plan_tier: Some(tier.into()),
        }
    }
}

/// Lifecycle phase of a key.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum APIKeyPhase {
    /// Waiting for review.
    #[default]
    Pending,
    /// Approved: the key works at the gateway.
    Approved,
    /// Denied or revoked. Objects stored before devportal said `Denied` (upstream's word) read
    /// `Rejected`; they deserialize to this and the controller rewrites their status.
    #[serde(alias = "Rejected")]
    Denied,
    /// Past `expiresAt`.
    Expired,
    /// Cannot work: product missing, tier gone, or no API-key auth on the route.
    Failed,
}

impl APIKeyPhase {
    /// Every phase, in display order.
    pub const ALL: [APIKeyPhase; 5] = [
        APIKeyPhase::Pending,
        APIKeyPhase::Approved,
        APIKeyPhase::Denied,
        APIKeyPhase::Expired,
        APIKeyPhase::Failed,
    ];

    /// The phase's name, also its condition type.
    pub fn as_str(self) -> &'static str {
        match self {
            APIKeyPhase::Pending => "Pending",
            APIKeyPhase::Approved => "Approved",
            APIKeyPhase::Denied => "Denied",
            APIKeyPhase::Expired => "Expired",
            APIKeyPhase::Failed => "Failed",
        }
    }
}

/// `APIKey.status`: where the key is and how to use it.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct APIKeyStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<APIKeyPhase>,
    /// One condition per phase, exactly one True; and `Ready`, True when the key is Approved
    /// and enforced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The consumer's Secret holding the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyRef>,
    /// Host name to call the API on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_hostname: Option<String>,
    /// The tier's limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// How to send the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_scheme: Option<KeyAuthScheme>,
    /// Who reviewed the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_by: Option<String>,
    /// When the request was reviewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_at: Option<MicroTime>,
    /// The last rotation request handled (annotation `devportal.kuadrant.io/rotation-request`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<KeyRotation>,
}

/// The last rotation request the controller handled: the key then got a new value in both
/// Secrets (or its first one), and the previous value stopped working.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyRotation {
    /// The token of the handled request, as the annotation carried it.
    pub request: String,
    /// When the value that answers it was put in place.
    pub rotated_at: Time,
}

/// A key inside a Secret.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    pub name: String,
    /// Data key within the Secret.
    pub key: String,
}

/// How a client presents the key: the AuthPolicy's apiKey rule and its credential location.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyAuthScheme {
    /// The apiKey authentication rule.
    pub authentication_spec: ApiKeyAuth,
    /// Where the key goes on the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
}

impl APIKeySpec {
    /// A request for `tier` of the product `product` in the key's own namespace.
    pub fn new(product: impl Into<String>, tier: impl Into<String>) -> Self {
        Self {
            api_product_ref: APIProductRef {
                name: product.into(),
                namespace: None,
            },
            plan_tier: tier.into(),
            use_case: None,
            requested_by: None,
            expires_at: None,
            secret_ref: None,
            approval: None,
        }
    }
}

impl APIKeySpec {
    /// Namespace of the referenced product: `apiProductRef.namespace`, else `key_namespace`.
    pub fn product_namespace<'a>(&'a self, key_namespace: Option<&'a str>) -> Option<&'a str> {
        self.api_product_ref.namespace.as_deref().or(key_namespace)
    }
}

impl APIKey {
    /// Namespace of the referenced product: `spec.apiProductRef.namespace`, else the key's own.
    pub fn product_namespace(&self) -> Option<&str> {
        self.spec
            .product_namespace(self.metadata.namespace.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn product_namespace_defaults_to_the_keys_own() {
        let mut key: APIKey = serde_json::from_value(json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1",
            "kind": "APIKey",
            "metadata": {"name": "k", "namespace": "team-a"},
            "spec": {"apiProductRef": {"name": "toys"}, "planTier": "gold"}
        }))
        .unwrap();
        assert_eq!(key.product_namespace(), Some("team-a"));
        key.spec.api_product_ref.namespace = Some("apps".into());
        assert_eq!(key.product_namespace(), Some("apps"));
    }

    #[test]
    fn a_stored_rejected_phase_reads_as_denied_and_is_written_as_denied() {
        let phase: APIKeyPhase = serde_json::from_value(json!("Rejected")).unwrap();
        assert_eq!(phase, APIKeyPhase::Denied);
        assert_eq!(serde_json::to_value(phase).unwrap(), json!("Denied"));
    }

    #[test]
    fn phase_names_match_serialization() {
        for phase in APIKeyPhase::ALL {
            assert_eq!(serde_json::to_value(phase).unwrap(), json!(phase.as_str()));
        }
    }
}
