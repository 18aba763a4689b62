//! The contract with Authorino, written down once: which Secrets an Authorino with default flags
//! indexes for an AuthPolicy's `apiKey` rule (as observed on a real Authorino v0.27 and read in its
//! source: `controllers/secret_controller.go`, `pkg/evaluators/identity/api_key.go`). Every
//! enforcement Secret devportal produces must pass [`indexed_key`]. This is deliberately a second,
//! independent reading of the rules, not a call into devportal's own selector code.

use std::collections::BTreeMap;

use devportal::resources::kuadrant::{ApiKeyAuth, AuthPolicy};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Authorino's default `--secret-label-selector`: it watches only Secrets with this label.
pub const DEFAULT_SECRET_LABEL: (&str, &str) = ("authorino.kuadrant.io/managed-by", "authorino");

/// The apiKey rule Authorino gets from `policy` (the first one by rule name, over defaults,
/// rules and overrides).
pub fn api_key_rule(policy: &AuthPolicy) -> ApiKeyAuth {
    policy
        .spec
        .effective_authentication()
        .into_values()
        .find_map(|rule| rule.api_key)
        .expect("the AuthPolicy has an apiKey rule")
}

/// Whether `labels` match a `metav1.LabelSelector` as `LabelSelectorAsSelector` builds it.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let exact = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions = selector.match_expressions.iter().flatten().all(|e| {
        let value = labels.get(&e.key);
        let values = e.values.clone().unwrap_or_default();
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            other => panic!("Authorino rejects the operator {other:?}"),
        }
    });
    exact && expressions
}

/// Asserts that an Authorino with default flags, serving the AuthConfig that kuadrant-operator
/// makes from `policy` in `kuadrant_namespace`, indexes `secret` — and returns the key it accepts:
/// - the Secret is in the AuthConfig's namespace (the Kuadrant namespace, not the policy's),
///   unless the rule has `allNamespaces: true`;
/// - its labels match the default `--secret-label-selector` and the rule's `selector`;
/// - its data `api_key` is not empty.
pub fn indexed_key(secret: &Secret, policy: &AuthPolicy, kuadrant_namespace: &str) -> String {
    let name = secret.metadata.name.as_deref().unwrap_or_default();
    let rule = api_key_rule(policy);
    let namespace = secret.metadata.namespace.as_deref().unwrap_or_default();
    assert!(
        rule.all_namespaces || namespace == kuadrant_namespace,
        "Secret {namespace}/{name}: Authorino reads API keys only from the AuthConfig's namespace {kuadrant_namespace}"
    );
    let labels = secret.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get(DEFAULT_SECRET_LABEL.0).map(String::as_str),
        Some(DEFAULT_SECRET_LABEL.1),
        "Secret {namespace}/{name}: Authorino watches only Secrets labelled {}={}",
        DEFAULT_SECRET_LABEL.0,
        DEFAULT_SECRET_LABEL.1
    );
    assert!(
        selector_matches(&rule.selector, &labels),
        "Secret {namespace}/{name}: labels {labels:?} do not match the apiKey selector {:?}",
        rule.selector
    );
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get("api_key"))
        .map(|v| String::from_utf8(v.0.clone()).expect("UTF-8 key"))
        .unwrap_or_default();
    assert!(
        !value.is_empty(),
        "Secret {namespace}/{name}: Authorino reads the key from data `api_key`"
    );
    value
}
