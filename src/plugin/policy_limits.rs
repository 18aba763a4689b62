//! What APIKeyPolicies mean for the caller, under `kubectl devportal products`: for each listed
//! product, the limits the `Deny` policies set on keys requested in the session's namespace (the
//! policies that merely warn or audit, too), each naming its policy. The flags behind the webhook
//! are not visible to a client; only what policies add is shown.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, ResourceExt};

use super::session::Session;
use crate::flags::format_duration;
use crate::policy::{self, Defaults, KeyFacts};
use crate::resources::{APIKeyPolicy, APIProduct, PolicyAction};

/// The policies, and the labels of the session's namespace. `None` when the caller may not list
/// policies (or the cluster has none of the kind): there is nothing to show then. Without the
/// right to read the namespace, only the label every namespace carries
/// (`kubernetes.io/metadata.name`) is known.
pub async fn read(session: &Session) -> Option<(Vec<APIKeyPolicy>, BTreeMap<String, String>)> {
    let policies = Api::<APIKeyPolicy>::all(session.client.clone())
        .list(&Default::default())
        .await
        .ok()?
        .items;
    let labels = match Api::<Namespace>::all(session.client.clone())
        .get(&session.namespace)
        .await
    {
        Ok(namespace) => namespace.labels().clone(),
        Err(_) => [(
            "kubernetes.io/metadata.name".to_string(),
            session.namespace.clone(),
        )]
        .into(),
    };
    Some((policies, labels))
}

/// One line per product that policies concern: `shop/toys: at most 1 key per requester
/// (APIKeyPolicy "one-key"); ...`. Empty when no policy concerns any.
pub fn lines(
    products: &[APIProduct],
    policies: &[APIKeyPolicy],
    namespace_labels: &BTreeMap<String, String>,
) -> Vec<String> {
    let open = Defaults {
        max_keys: usize::MAX,
        max_lifetime: None,
        min_own_key_length: 0,
    };
    let mut out = Vec::new();
    for product in products {
        let namespace = product.namespace().unwrap_or_default();
        let tiers: Vec<&str> = product
            .status
            .iter()
            .flat_map(|s| s.discovered_plans.iter().map(|p| p.tier.as_str()))
            .collect();
        // Tier-specific policies: judged per tier the product offers (or once, tier-less).
        let asked: Vec<&str> = if tiers.is_empty() {
            vec![""]
        } else {
            tiers.clone()
        };
        let mut said: Vec<String> = Vec::new();
        for tier in &asked {
            let facts = KeyFacts {
                consumer_labels: Some(namespace_labels),
                product_namespace: &namespace,
                product_labels: product.metadata.labels.as_ref(),
                tier,
                ..KeyFacts::default()
            };
            let matched = policy::matching(policies, &facts);
            let effective = policy::effective(&matched, &open);
            let mut parts = Vec::new();
            if let Some(policy) = &effective.max_keys.policy {
                parts.push(format!(
                    "at most {} keys per requester (APIKeyPolicy {policy:?})",
                    effective.max_keys.value
                ));
            }
            if let Some(limit) = &effective.max_lifetime {
                parts.push(format!(
                    "keys live at most {} ({})",
                    format_duration(limit.value),
                    limit.source("")
                ));
            }
            if let Some(policy) = &effective.expiry_required {
                parts.push(format!("keys need an expiry (APIKeyPolicy {policy:?})"));
            }
            if let Some(policy) = &effective.manual_approval {
                parts.push(format!(
                    "an owner approves every key (APIKeyPolicy {policy:?})"
                ));
            }
            if let Some(policy) = &effective.min_own_key_length.policy {
                parts.push(format!(
                    "brought keys have at least {} characters (APIKeyPolicy {policy:?})",
                    effective.min_own_key_length.value
                ));
            }
            if !tier.is_empty()
                && let Some(policy) = effective.tier_refused_by(tier)
            {
                parts.push(format!("tier {tier} not allowed (APIKeyPolicy {policy:?})"));
            }
            for m in matched.iter().filter(|m| m.action != PolicyAction::Deny) {
                parts.push(format!(
                    "APIKeyPolicy {:?} {}s",
                    m.name,
                    m.action.as_str().to_lowercase()
                ));
            }
            for part in parts {
                if !said.contains(&part) {
                    said.push(part);
                }
            }
        }
        if !said.is_empty() {
            out.push(format!(
                "{namespace}/{}: {}",
                product.name_any(),
                said.join("; ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(name: &str, spec: serde_json::Value) -> APIKeyPolicy {
        serde_json::from_value(json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKeyPolicy",
            "metadata": {"name": name}, "spec": spec
        }))
        .unwrap()
    }

    fn product(name: &str, labels: serde_json::Value) -> APIProduct {
        serde_json::from_value(json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIProduct",
            "metadata": {"name": name, "namespace": "shop", "labels": labels},
            "spec": {"displayName": name, "targetRef": {"group": "gateway.networking.k8s.io",
                     "kind": "HTTPRoute", "name": "r"}},
            "status": {"discoveredPlans": [{"tier": "free"}, {"tier": "gold"}]}
        }))
        .unwrap()
    }

    #[test]
    fn each_product_shows_the_limits_policies_set_for_the_callers_namespace() {
        let sandbox: BTreeMap<String, String> = [("env".to_string(), "sandbox".to_string())].into();
        let policies = [
            policy(
                "sandbox",
                json!({
                "match": {"consumerNamespaceSelector": {"matchLabels": {"env": "sandbox"}}},
                "rules": {"maxLifetime": "30d", "tiers": {"allowed": ["free"]}}}),
            ),
            policy(
                "partners",
                json!({
                "match": {"products": {"selector": {"matchLabels": {"audience": "partners"}}}},
                "rules": {"manualApproval": true, "maxKeysPerRequesterPerProduct": 2}}),
            ),
            policy(
                "watch-gold",
                json!({"match": {"tiers": ["gold"]}, "action": "Audit",
                "rules": {"maxLifetime": "1d"}}),
            ),
        ];
        let products = [
            product("toys", json!({})),
            product("partner-api", json!({"audience": "partners"})),
        ];
        let lines = lines(&products, &policies, &sandbox);
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert_eq!(
            lines[0],
            "shop/toys: keys live at most 30d (APIKeyPolicy \"sandbox\"); tier gold not allowed \
             (APIKeyPolicy \"sandbox\"); APIKeyPolicy \"watch-gold\" audits"
        );
        assert!(
            lines[1].starts_with(
                "shop/partner-api: at most 2 keys per requester (APIKeyPolicy \"partners\")"
            ),
            "{}",
            lines[1]
        );
        assert!(lines[1].contains("an owner approves every key (APIKeyPolicy \"partners\")"));
        // Elsewhere, only the product policy applies.
        let prod: BTreeMap<String, String> = [("env".to_string(), "prod".to_string())].into();
        let lines = super::lines(&products[..1], &policies[..2], &prod);
        assert!(lines.is_empty(), "{lines:?}");
    }
}
