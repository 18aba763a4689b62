//! Read models for Kuadrant policies: `AuthPolicy` (`kuadrant.io/v1`) and `PlanPolicy`
//! (`extensions.kuadrant.io/v1alpha1`).
//!
//! Only the fields devportal reads are modelled; unknown fields are ignored on deserialization.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::Limits;
use super::gateway::ForeignCondition;

/// A reference from a policy to the object it attaches to (a Gateway or an HTTPRoute).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyTargetRef {
    /// API group of the target, `gateway.networking.k8s.io`.
    pub group: String,
    /// Kind of the target, `Gateway` or `HTTPRoute`.
    pub kind: String,
    /// Name of the target, in the policy's namespace.
    pub name: String,
    /// Optional section (listener or rule) of the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}

/// `AuthPolicy.spec`: authentication for a route or gateway.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kuadrant.io",
    version = "v1",
    kind = "AuthPolicy",
    plural = "authpolicies",
    namespaced,
    status = "PolicyStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct AuthPolicySpec {
    /// The Gateway or HTTPRoute the policy attaches to.
    pub target_ref: PolicyTargetRef,
    /// Rules given directly in the spec (the implicit-defaults form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<AuthRules>,
    /// Rules that lower-level policies may override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<AuthRuleSet>,
    /// Rules that lower-level policies cannot override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<AuthRuleSet>,
}

/// A `defaults` or `overrides` block of an AuthPolicy.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuthRuleSet {
    /// The rules of the block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<AuthRules>,
}

/// The rules of an AuthPolicy: `authentication` read, the other sections kept as they are (for
/// the product's `status.discoveredAuthScheme`).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuthRules {
    /// Authentication rules by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub authentication: BTreeMap<String, AuthenticationRule>,
    /// Authorization rules by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub authorization: BTreeMap<String, Value>,
    /// Callbacks by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub callbacks: BTreeMap<String, Value>,
    /// Metadata sources by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, Value>,
    /// The responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
}

/// One named authentication rule of an AuthPolicy.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationRule {
    /// API-key authentication: which Secrets hold valid keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<ApiKeyAuth>,
    /// JWT authentication against an OIDC issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtAuth>,
    /// Where the client sends the credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
    /// The rule's other fields (`anonymous`, `cache`, `when`, `priority`, ...), kept as they are.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// The `apiKey` method of an authentication rule.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyAuth {
    /// Label selector of the Secrets that hold valid keys.
    #[serde(default)]
    pub selector: LabelSelector,
    /// Whether Secrets in every namespace count, not only the policy's own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_namespaces: bool,
}

/// The `jwt` method of an authentication rule.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JwtAuth {
    /// The OIDC issuer; `{issuerUrl}/.well-known/openid-configuration` is its discovery document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_url: Option<String>,
}

/// Where a client puts its credential on the request.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    /// In the `Authorization` header, after a prefix such as `APIKEY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_header: Option<HeaderPrefix>,
    /// In a custom header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_header: Option<NamedCredential>,
    /// In a query string parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_string: Option<NamedCredential>,
    /// In a cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<NamedCredential>,
}

/// The `authorizationHeader` credential location.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderPrefix {
    /// The prefix before the key, such as `APIKEY` or `Bearer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// A credential location given by name (header, query parameter or cookie).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamedCredential {
    /// The header, parameter or cookie name.
    pub name: String,
}

impl AuthPolicySpec {
    /// The authentication rules in force: `overrides` win over the plain `rules`, which win over
    /// `defaults`, rule by rule name.
    pub fn effective_authentication(&self) -> BTreeMap<String, AuthenticationRule> {
        self.effective(|rules| &rules.authentication)
    }

    /// The rules of one named section (`authorization`, `callbacks`, `metadata`) in force, merged
    /// as [`Self::effective_authentication`] merges authentication.
    pub fn effective<T: Clone>(
        &self,
        section: impl Fn(&AuthRules) -> &BTreeMap<String, T>,
    ) -> BTreeMap<String, T> {
        let mut merged = BTreeMap::new();
        for rules in self.layers() {
            for (name, rule) in section(rules) {
                merged.insert(name.clone(), rule.clone());
            }
        }
        merged
    }

    /// The `response` in force: that of `overrides`, else of the plain `rules`, else of
    /// `defaults`.
    pub fn effective_response(&self) -> Option<Value> {
        self.layers().filter_map(|r| r.response.clone()).last()
    }

    fn layers(&self) -> impl Iterator<Item = &AuthRules> {
        [
            self.defaults.as_ref().and_then(|d| d.rules.as_ref()),
            self.rules.as_ref(),
            self.overrides.as_ref().and_then(|o| o.rules.as_ref()),
        ]
        .into_iter()
        .flatten()
    }
}

/// The status every Kuadrant policy reports: a list of conditions.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PolicyStatus {
    /// The policy's conditions (`Accepted`, `Enforced`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ForeignCondition>,
}

impl AuthPolicy {
    /// True when the policy reports both `Accepted` and `Enforced` as True.
    pub fn is_enforced(&self) -> bool {
        let conditions = self
            .status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or(&[]);
        ["Accepted", "Enforced"]
            .iter()
            .all(|t| ForeignCondition::is_true(conditions, t))
    }
}

/// `PlanPolicy.spec`: rate-limit tiers for a route or gateway.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "extensions.kuadrant.io",
    version = "v1alpha1",
    kind = "PlanPolicy",
    plural = "planpolicies",
    namespaced,
    status = "PolicyStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct PlanPolicySpec {
    /// The Gateway or HTTPRoute the policy attaches to.
    pub target_ref: PolicyTargetRef,
    /// The tiers, in the policy's order.
    #[serde(default)]
    pub plans: Vec<Plan>,
}

/// One tier of a PlanPolicy.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// The tier's name, such as `gold`.
    pub tier: String,
    /// CEL predicate that selects requests of this tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate: Option<String>,
    /// The tier's limits.
    #[serde(default)]
    pub limits: Limits,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn auth_policy_tolerates_unknown_fields_and_merges_layers() {
        let policy: AuthPolicy = serde_json::from_value(json!({
            "apiVersion": "kuadrant.io/v1",
            "kind": "AuthPolicy",
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {
                "targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "r"},
                "when": [{"predicate": "true"}],
                "defaults": {"rules": {"authentication": {
                    "keys": {"apiKey": {"selector": {"matchLabels": {"app": "old"}}}},
                    "jwt": {"jwt": {"issuerUrl": "https://issuer"}}
                }}, "strategy": "atomic"},
                "overrides": {"rules": {"authentication": {
                    "keys": {"apiKey": {"selector": {"matchLabels": {"app": "new"}}, "allNamespaces": true},
                             "credentials": {"authorizationHeader": {"prefix": "APIKEY"}},
                             "cache": {"ttl": 30}}
                }}}
            },
            "status": {"conditions": [
                {"type": "Accepted", "status": "True", "reason": "Accepted", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "Enforced", "status": "True"}
            ], "observedGeneration": 3}
        }))
        .expect("a real AuthPolicy deserializes");
        assert!(policy.is_enforced());
        let rules = policy.spec.effective_authentication();
        assert_eq!(rules.keys().collect::<Vec<_>>(), ["jwt", "keys"]);
        let keys = rules["keys"].api_key.as_ref().expect("apiKey rule");
        assert!(keys.all_namespaces);
        assert_eq!(
            keys.selector.match_labels.as_ref().unwrap()["app"],
            "new",
            "overrides win over defaults"
        );
        assert_eq!(
            rules["keys"].other["cache"],
            json!({"ttl": 30}),
            "the rule's other fields are kept"
        );
    }

    #[test]
    fn every_section_of_the_rules_is_merged_by_name_and_the_response_by_layer() {
        let spec: AuthPolicySpec = serde_json::from_value(json!({
            "targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "r"},
            "defaults": {"rules": {
                "authorization": {"gold-only": {"patternMatching": {"patterns": [{"predicate": "false"}]}},
                                  "kept": {"opa": {"rego": "allow = true"}}},
                "response": {"unauthenticated": {"code": 401}}
            }},
            "rules": {
                "authorization": {"gold-only": {"patternMatching": {"patterns": [{"predicate": "true"}]}}},
                "metadata": {"user": {"userInfo": {"identitySource": "jwt"}}},
                "callbacks": {"audit": {"http": {"url": "https://audit.example"}}},
                "response": {"success": {"headers": {"x-user": {"plain": {"expression": "auth.identity.sub"}}}}}
            }
        }))
        .unwrap();
        let authorization = spec.effective(|r| &r.authorization);
        assert_eq!(
            authorization["gold-only"]["patternMatching"]["patterns"][0]["predicate"], "true",
            "the plain rules win over defaults"
        );
        assert_eq!(
            authorization["kept"],
            json!({"opa": {"rego": "allow = true"}})
        );
        assert_eq!(
            spec.effective(|r| &r.metadata)["user"]["userInfo"]["identitySource"],
            "jwt"
        );
        assert_eq!(spec.effective(|r| &r.callbacks).len(), 1);
        assert_eq!(
            spec.effective_response(),
            Some(
                json!({"success": {"headers": {"x-user": {"plain": {"expression": "auth.identity.sub"}}}}})
            )
        );
    }

    #[test]
    fn auth_policy_not_enforced_without_both_conditions() {
        let mut policy = AuthPolicy::new(
            "p",
            AuthPolicySpec {
                target_ref: PolicyTargetRef {
                    group: "gateway.networking.k8s.io".into(),
                    kind: "Gateway".into(),
                    name: "gw".into(),
                    section_name: None,
                },
                rules: None,
                defaults: None,
                overrides: None,
            },
        );
        assert!(!policy.is_enforced());
        policy.status = Some(PolicyStatus {
            conditions: vec![ForeignCondition::new("Accepted", "True")],
        });
        assert!(!policy.is_enforced());
    }

    #[test]
    fn plan_policy_reads_tiers_in_order() {
        let policy: PlanPolicy = serde_json::from_value(json!({
            "apiVersion": "extensions.kuadrant.io/v1alpha1",
            "kind": "PlanPolicy",
            "metadata": {"name": "plans", "namespace": "ns"},
            "spec": {
                "targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "r"},
                "plans": [
                    {"tier": "gold", "predicate": "auth.identity.tier == 'gold'", "limits": {"daily": 1000, "custom": [{"limit": 10, "window": "1s"}]}},
                    {"tier": "bronze", "limits": {"monthly": 10}}
                ]
            }
        }))
        .expect("a real PlanPolicy deserializes");
        let tiers: Vec<_> = policy.spec.plans.iter().map(|p| p.tier.as_str()).collect();
        assert_eq!(tiers, ["gold", "bronze"]);
        assert_eq!(policy.spec.plans[0].limits.custom[0].window, "1s");
    }
}
