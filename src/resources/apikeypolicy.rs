//! `APIKeyPolicy`: a cluster-wide guardrail a platform admin writes — which keys consumers may
//! hold, for how long, under which plans and with whose approval — matched by consumer namespace,
//! product and tier, enforced (`Deny`), announced (`Warn`) or only reported (`Audit`), as a
//! ValidatingAdmissionPolicyBinding's `validationActions` are. The evaluation is
//! [`crate::policy`]'s; docs/policies.md is the user's guide.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::SINGLE_LINE;

/// A CEL rule on a `metav1.LabelSelector` that Kubernetes' `LabelSelectorAsSelector` would refuse:
/// an unknown operator, values on `Exists`/`DoesNotExist`, none on `In`/`NotIn`.
macro_rules! selector_rule {
    () => {
        Rule::new(
            "!has(self.matchExpressions) || self.matchExpressions.all(e, \
             (e.operator in ['In', 'NotIn'] && has(e.values) && size(e.values) > 0) || \
             (e.operator in ['Exists', 'DoesNotExist'] && (!has(e.values) || size(e.values) == 0)))",
        )
        .message(
            "matchExpressions: operator must be In or NotIn with at least one value, or Exists or \
             DoesNotExist without values",
        )
        .reason(Reason::FieldValueInvalid)
    };
}

/// `APIKeyPolicy.spec`: what it matches, its rules, and what happens to a key that breaks one.
// Each printcolumn repeats `type_`; clippy reads those as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "devportal.kuadrant.io",
    version = "v1alpha1",
    kind = "APIKeyPolicy",
    plural = "apikeypolicies",
    singular = "apikeypolicy",
    shortname = "apikp",
    category = "devportal",
    status = "APIKeyPolicyStatus",
    derive = "PartialEq",
    doc = "A cluster-wide guardrail on API keys: for the consumer namespaces, products and tiers it \
           matches, at most so many keys per requester and product, a maximum lifetime, an \
           expiry, allowed or forbidden tiers, an owner's approval even on automatic products, a \
           minimum length of brought keys. action Deny refuses (or holds back) keys that break a \
           rule, Warn admits them with a warning, Audit only reports them; existing keys that \
           break a rule are reported in status, never revoked. Several policies combine: the \
           most restrictive wins, and devportal's flags are the defaults they tighten.",
    printcolumn(name = "Action", type_ = "string", json_path = ".spec.action"),
    printcolumn(
        name = "Violations",
        type_ = "integer",
        json_path = ".status.violations.count"
    ),
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
pub struct APIKeyPolicySpec {
    /// Which keys the policy concerns; empty matches every key.
    #[serde(default, rename = "match")]
    pub match_: PolicyMatch,
    /// The rules; each is optional.
    #[serde(default)]
    pub rules: PolicyRules,
    /// `Deny` (default) enforces the rules, `Warn` admits with a warning, `Audit` only reports.
    #[serde(default)]
    pub action: PolicyAction,
}

/// The keys a policy concerns: all of the given conditions hold (an absent one holds for every
/// key).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyMatch {
    /// Labels of the key's own (consumer) namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = selector_rule!())]
    pub consumer_namespace_selector: Option<LabelSelector>,
    /// The products the keys are for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub products: Option<ProductMatch>,
    /// Plan tiers the keys ask for; empty: every tier.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 64),
        inner(length(min = 1, max = 63), pattern(SINGLE_LINE))
    )]
    pub tiers: Vec<String>,
}

/// Products by namespace and labels (both must hold when both are given).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductMatch {
    /// The products' namespaces; empty: every namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 63)))]
    pub namespaces: Vec<String>,
    /// Labels of the APIProduct.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = selector_rule!())]
    pub selector: Option<LabelSelector>,
}

/// The rules of a policy. A key breaks the policy when it breaks any of them.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRules {
    /// At most this many keys per requester per product that are or can become live (the same
    /// count as `--max-keys-per-user-per-product`, which stays the ceiling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1").message("must be at least 1").reason(Reason::FieldValueInvalid))]
    pub max_keys_per_requester_per_product: Option<u32>,
    /// The longest life of a key, as `--max-key-lifetime` reads it (`30d`, `720h`, `90m`,
    /// `3600s`): `spec.expiresAt` at most this far after the key's creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.matches('^[0-9]{1,9}(s|m|h|d)$') && !self.matches('^0+[smhd]$')")
        .message(Message::Expression("'maxLifetime must be a positive whole number of s, m, h or d (for example 30d), got ' + self".into()))
        .reason(Reason::FieldValueInvalid))]
    pub max_lifetime: Option<String>,
    /// Keys must carry `spec.expiresAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_required: Option<bool>,
    /// The tiers matched consumers may (or may not) ask for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiers: Option<TierRule>,
    /// Keys wait for an owner's approval even when their product approves automatically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual_approval: Option<bool>,
    /// A key the consumer brings (`spec.secretRef`) has at least this many characters (the same
    /// check as `--own-key-min-length`, which stays the floor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 4096").message("must be between 1 and 4096").reason(Reason::FieldValueInvalid))]
    pub min_own_key_length: Option<u32>,
}

/// Allowed or forbidden tiers: one of the two.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.allowed) != has(self.forbidden)")
    .message("set exactly one of allowed and forbidden")
    .reason(Reason::FieldValueInvalid))]
#[serde(rename_all = "camelCase")]
pub struct TierRule {
    /// Only these tiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 64),
        inner(length(min = 1, max = 63), pattern(SINGLE_LINE))
    )]
    pub allowed: Option<Vec<String>>,
    /// Any tier but these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 64),
        inner(length(min = 1, max = 63), pattern(SINGLE_LINE))
    )]
    pub forbidden: Option<Vec<String>>,
}

/// What happens to a key that breaks a rule.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum PolicyAction {
    /// Refused at admission (a key past a limit, of a forbidden tier, living too long), or held
    /// back by the controller (an owner's approval, a brought key too short).
    #[default]
    Deny,
    /// Admitted with an admission warning naming the policy and rule; reported in status.
    Warn,
    /// Admitted silently; reported in status, Events and the violations metric.
    Audit,
}

impl PolicyAction {
    /// `Deny`, `Warn` or `Audit`.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyAction::Deny => "Deny",
            PolicyAction::Warn => "Warn",
            PolicyAction::Audit => "Audit",
        }
    }
}

/// `APIKeyPolicy.status`: whether the policy is in force, and the existing keys that break it.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct APIKeyPolicyStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted` (its selectors and lifetime parse) and `Ready` (in force and audited).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The existing keys that break the policy, as the last audit found them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub violations: Option<PolicyViolations>,
}

/// How many existing keys break the policy, by rule, and the first of them (like Gatekeeper's
/// `totalViolations` and `violations`).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyViolations {
    /// Keys breaking at least one rule.
    pub count: u32,
    /// Broken rules, by rule name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_rule: BTreeMap<String, u32>,
    /// The first violations, by key namespace and name (bounded; `count` has them all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<KeyViolation>,
}

/// One rule one key breaks.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyViolation {
    /// The APIKey's namespace.
    pub namespace: String,
    /// The APIKey's name.
    pub name: String,
    /// The rule, as named in `spec.rules`.
    pub rule: String,
    /// What is wrong, for a person.
    pub message: String,
}
