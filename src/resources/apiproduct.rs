//! `APIProduct`: an API owner's publication of an HTTPRoute as a product consumers can request
//! keys for.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;

use super::common::{GIT_URL, MULTI_LINE, SINGLE_LINE, WEB_URL};
use serde::{Deserialize, Serialize};

use super::common::Limits;
use super::kuadrant::AuthenticationRule;

/// `APIProduct.spec`: what the owner publishes.
// Each printcolumn repeats `type_`; clippy reads those as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "devportal.kuadrant.io",
    version = "v1alpha1",
    kind = "APIProduct",
    plural = "apiproducts",
    singular = "apiproduct",
    category = "devportal",
    namespaced,
    status = "APIProductStatus",
    derive = "PartialEq",
    doc = "An API published to consumers on top of a Gateway API HTTPRoute.",
    printcolumn(
        name = "Display name",
        type_ = "string",
        json_path = ".spec.displayName"
    ),
    printcolumn(name = "Route", type_ = "string", json_path = ".spec.targetRef.name"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.approvalMode"),
    printcolumn(
        name = "Published",
        type_ = "string",
        json_path = ".spec.publishStatus"
    ),
    printcolumn(name = "Plans", type_ = "string", json_path = ".status.planTiers"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct APIProductSpec {
    /// Human-readable name shown in the portal.
    #[schemars(length(min = 1, max = 256), pattern(SINGLE_LINE))]
    pub display_name: String,
    /// What the API does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096), pattern(MULTI_LINE))]
    pub description: Option<String>,
    /// Version label of the API, such as `v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), pattern(SINGLE_LINE))]
    pub version: Option<String>,
    /// Free-form tags for browsing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 32),
        inner(length(min = 1, max = 64), pattern(SINGLE_LINE))
    )]
    pub tags: Vec<String>,
    /// Whether key requests are approved automatically or by an owner.
    #[serde(default)]
    pub approval_mode: ApprovalMode,
    /// Whether consumers may request keys (`Published`) or only owners see it (`Draft`).
    #[serde(default)]
    pub publish_status: PublishStatus,
    /// The HTTPRoute in this namespace that serves the API.
    pub target_ref: HTTPRouteRef,
    /// Where the API's documentation lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation: Option<Documentation>,
    /// Who to talk to about the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
}

/// How key requests for a product are approved.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalMode {
    /// Every request is approved as soon as it is made.
    Automatic,
    /// An owner or admin approves each request.
    #[default]
    Manual,
}

/// Whether a product is visible to consumers.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum PublishStatus {
    /// Only owners and admins may request keys.
    #[default]
    Draft,
    /// Consumers may request keys.
    Published,
}

/// Reference to the HTTPRoute that serves a product. The CRD pins it to Gateway API's HTTPRoute.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new(
    "self.group == 'gateway.networking.k8s.io' && self.kind == 'HTTPRoute'"
).message(Message::Expression(
    "'targetRef must reference a gateway.networking.k8s.io HTTPRoute, got kind ' + self.kind + ' in group ' + (self.group == '' ? '\"\" (core)' : self.group)".into()
)).reason(Reason::FieldValueInvalid))]
#[serde(rename_all = "camelCase")]
pub struct HTTPRouteRef {
    /// Must be `gateway.networking.k8s.io`.
    #[schemars(length(max = 253))]
    pub group: String,
    /// Must be `HTTPRoute`.
    #[schemars(length(max = 63))]
    pub kind: String,
    /// Name of the HTTPRoute in the product's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

impl HTTPRouteRef {
    /// A reference to the HTTPRoute `name`.
    pub fn route(name: impl Into<String>) -> Self {
        Self {
            group: "gateway.networking.k8s.io".into(),
            kind: "HTTPRoute".into(),
            name: name.into(),
        }
    }
}

/// Links to the product's documentation.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Documentation {
    /// URL of the OpenAPI document (`http` or `https`); the controller fetches it into
    /// `status.openapi`.
    #[serde(
        default,
        rename = "openAPISpecURL",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = 2048), pattern(WEB_URL))]
    pub openapi_spec_url: Option<String>,
    /// URL of a Swagger UI for the API (`http` or `https`).
    #[serde(default, rename = "swaggerUI", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), pattern(WEB_URL))]
    pub swagger_ui: Option<String>,
    /// URL of human-written docs (`http` or `https`).
    #[serde(default, rename = "docsURL", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), pattern(WEB_URL))]
    pub docs_url: Option<String>,
    /// Source repository: an `http(s)`, `ssh` or `git` URL, or `user@host:path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), pattern(GIT_URL))]
    pub git_repository: Option<String>,
    /// Backstage TechDocs reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), pattern(SINGLE_LINE))]
    pub techdocs_ref: Option<String>,
}

/// How to reach the team behind a product.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    /// Owning team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256), pattern(SINGLE_LINE))]
    pub team: Option<String>,
    /// Contact e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256), pattern(SINGLE_LINE))]
    pub email: Option<String>,
    /// Slack channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256), pattern(SINGLE_LINE))]
    pub slack: Option<String>,
    /// Any other contact URL (`http` or `https`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), pattern(WEB_URL))]
    pub url: Option<String>,
}

/// `APIProduct.status`: what the controller discovered about the product.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct APIProductStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Tiers and limits from the PlanPolicy, in the policy's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discovered_plans: Vec<DiscoveredPlan>,
    /// The discovered tiers as one comma-separated string, for the `Plans` printer column (a
    /// column's JSONPath shows only the first element of a list). Kept in step by [`Self::set_plans`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_tiers: Option<String>,
    /// The policies in force on the product's route (the PlanPolicy and the AuthPolicy), as
    /// references; a front end reads their names here rather than from condition messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discovered_policies: Vec<DiscoveredPolicy>,
    /// The rules of the AuthPolicy in force (schema: kuadrant-operator's, see
    /// [`super::upstream_schema`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::upstream_schema::discovered_auth_scheme")]
    pub discovered_auth_scheme: Option<DiscoveredAuthScheme>,
    /// What the OIDC issuer's discovery document says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_discovery: Option<OidcDiscovery>,
    /// The fetched OpenAPI document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openapi: Option<OpenApiStatus>,
    /// What this product's enforcement Secrets carry, and since when: the labels its keys get in
    /// the enforcement namespace, where every AuthConfig selects by labels. An AuthPolicy can
    /// require `devportal.kuadrant.io/product-namespace` and `devportal.kuadrant.io/product` as
    /// shown here to accept this product's keys only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement: Option<ProductEnforcement>,
    /// `Ready`, `PlanPolicyDiscovered`, `AuthPolicyDiscovered`, `OIDCDiscovered`, and
    /// `OpenAPISpecReady` when `spec.documentation.openAPISpecURL` is set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// The labels a product's enforcement Secrets carry, the AuthPolicy they satisfy, and since when
/// (the older of two products whose keys would work on each other's API keeps its keys).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductEnforcement {
    /// The AuthPolicy whose apiKey rule the labels satisfy, `namespace/name`.
    pub auth_policy: String,
    /// Every label of the product's enforcement Secrets but the per-key
    /// `devportal.kuadrant.io/apikey-uid`.
    pub labels: BTreeMap<String, String>,
    /// When devportal first saw the product with these labels and this AuthPolicy.
    pub since: Time,
}

/// One tier a consumer may request.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveredPlan {
    /// Tier name, the value of `APIKey.spec.planTier`. A PlanPolicy tier whose name holds
    /// control, format or invisible characters is not copied here.
    #[schemars(pattern(SINGLE_LINE))]
    pub tier: String,
    /// The tier's limits.
    #[serde(default)]
    pub limits: Limits,
}

/// A policy discovered on a product's route or its Gateway.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveredPolicy {
    /// `AuthPolicy` or `PlanPolicy`.
    pub kind: String,
    /// Namespace of the policy.
    pub namespace: String,
    /// Name of the policy.
    pub name: String,
}

/// The rules of the AuthPolicy in force, as the AuthPolicy has them (defaults, rules and
/// overrides merged rule by name): what a front end shows of how to call the API.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveredAuthScheme {
    /// Authentication rules by name, in name order.
    #[serde(default)]
    pub authentication: BTreeMap<String, AuthenticationRule>,
    /// Authorization rules by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub authorization: BTreeMap<String, serde_json::Value>,
    /// Callbacks by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub callbacks: BTreeMap<String, serde_json::Value>,
    /// Metadata sources by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// The responses Authorino sends (success headers and filters, unauthenticated,
    /// unauthorized).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<serde_json::Value>,
}

/// Facts from an OIDC issuer's discovery document.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OidcDiscovery {
    /// The issuer's token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
}

/// A fetched OpenAPI document.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenApiStatus {
    /// The document as served.
    pub raw: String,
    /// When it was last fetched.
    pub last_sync_time: Time,
    /// The largest document devportal accepted when it fetched this one, in bytes
    /// (`--fetch-max-bytes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size_used: Option<i64>,
}

impl APIProductStatus {
    /// Sets the discovered plans and the `planTiers` summary that mirrors them.
    pub fn set_plans(&mut self, plans: Vec<DiscoveredPlan>) {
        self.plan_tiers = (!plans.is_empty()).then(|| {
            plans
                .iter()
                .map(|p| p.tier.as_str())
                .collect::<Vec<_>>()
                .join(",")
        });
        self.discovered_plans = plans;
    }
}

impl APIProduct {
    /// The discovered plan for `tier`, if the product's PlanPolicy has one.
    pub fn plan(&self, tier: &str) -> Option<&DiscoveredPlan> {
        self.status
            .as_ref()?
            .discovered_plans
            .iter()
            .find(|p| p.tier == tier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn minimal_spec_gets_defaults() {
        let spec: APIProductSpec = serde_json::from_value(json!({
            "displayName": "Toys",
            "targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "toystore"}
        }))
        .unwrap();
        assert_eq!(spec.approval_mode, ApprovalMode::Manual);
        assert_eq!(spec.publish_status, PublishStatus::Draft);
    }

    #[test]
    fn plan_tiers_mirror_the_discovered_plans() {
        let plan = |tier: &str| DiscoveredPlan {
            tier: tier.into(),
            limits: Limits::default(),
        };
        let mut status = APIProductStatus::default();
        status.set_plans(vec![plan("gold"), plan("silver")]);
        assert_eq!(status.plan_tiers.as_deref(), Some("gold,silver"));
        status.set_plans(vec![]);
        assert_eq!(status.plan_tiers, None);
    }

    #[test]
    fn documentation_uses_upstream_field_names() {
        let doc = Documentation {
            openapi_spec_url: Some("https://x/openapi.json".into()),
            swagger_ui: Some("https://x/ui".into()),
            docs_url: Some("https://x/docs".into()),
            ..Documentation::default()
        };
        let value = serde_json::to_value(doc).unwrap();
        assert_eq!(
            value,
            json!({"openAPISpecURL": "https://x/openapi.json", "swaggerUI": "https://x/ui", "docsURL": "https://x/docs"})
        );
    }
}
