//! Finding what a product runs on: its HTTPRoute, the PlanPolicy and AuthPolicy in force, and the
//! documents they point at (OIDC discovery, OpenAPI).
//!
//! [`resolve`] works on the controller's watch caches only; [`Fetcher`] does the HTTP fetches with
//! a size cap and retries with backoff, only to destinations the [`DestinationPolicy`] allows, and
//! returns only documents of the kind asked for.

mod address;
mod destination;
mod documents;
mod fetch;
mod service_ranges;

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::resources::common::{escaped, is_hidden};
use crate::resources::gateway::HTTPRoute;
use crate::resources::kuadrant::{
    ApiKeyAuth, AuthPolicy, AuthenticationRule, Credentials, PlanPolicy, PolicyTargetRef,
};
use crate::resources::{APIProduct, DiscoveredAuthScheme, DiscoveredPlan, DiscoveredPolicy};

pub use address::{AddressClass, classify};
pub use destination::{AllowEntry, AllowList, DenyList, DestinationPolicy, parse_network};
pub use fetch::{FetchArgs, FetchError, FetchFailure, Fetcher};
pub use service_ranges::ServiceRanges;

pub use crate::names::GATEWAY_GROUP;

/// The watch caches discovery reads.
#[derive(Clone)]
pub struct Caches {
    /// Every HTTPRoute.
    pub routes: Store<HTTPRoute>,
    /// Every AuthPolicy.
    pub auth_policies: Store<AuthPolicy>,
    /// Every PlanPolicy.
    pub plan_policies: Store<PlanPolicy>,
}

/// An object a policy can target: `kind` (`HTTPRoute` or `Gateway`), namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    /// `HTTPRoute` or `Gateway`.
    pub kind: String,
    /// Namespace of the target.
    pub namespace: String,
    /// Name of the target.
    pub name: String,
}

impl Target {
    /// What a policy in `namespace` targets, if it targets a Gateway API object.
    pub fn of_policy(target: &PolicyTargetRef, namespace: &str) -> Option<Self> {
        (target.group == GATEWAY_GROUP).then(|| Target {
            kind: target.kind.clone(),
            namespace: namespace.to_string(),
            name: target.name.clone(),
        })
    }
}

/// A reference to `policy`, of `kind`.
fn policy_ref<K: kube::Resource>(kind: &str, policy: &K) -> DiscoveredPolicy {
    DiscoveredPolicy {
        kind: kind.into(),
        namespace: policy.meta().namespace.clone().unwrap_or_default(),
        name: policy.meta().name.clone().unwrap_or_default(),
    }
}

/// What a product resolved to in the caches.
#[derive(Clone, Debug, Default)]
pub struct Resolution {
    /// The product's HTTPRoute, if it exists.
    pub route: Option<Arc<HTTPRoute>>,
    /// The PlanPolicy in force (route-level, else gateway-level).
    pub plan_policy: Option<Arc<PlanPolicy>>,
    /// The enforced AuthPolicy in force (route-level, else gateway-level).
    pub auth_policy: Option<Arc<AuthPolicy>>,
    /// Every object whose changes can change this resolution, for the watch index.
    pub watched: Vec<Target>,
}

impl Resolution {
    /// The tiers and limits of the PlanPolicy, in its order, first occurrence of a tier winning.
    /// A tier whose name holds control, format or invisible characters is left out (see
    /// [`Self::skipped_tiers`]): the PlanPolicy is a tenant's text, and status reaches every
    /// terminal and front end.
    pub fn plans(&self) -> Vec<DiscoveredPlan> {
        let mut plans: Vec<DiscoveredPlan> = Vec::new();
        for plan in self.plan_policy.iter().flat_map(|p| &p.spec.plans) {
            if plan.tier.is_empty() || plan.tier.chars().any(is_hidden) {
                continue;
            }
            if !plans.iter().any(|p| p.tier == plan.tier) {
                plans.push(DiscoveredPlan {
                    tier: plan.tier.clone(),
                    limits: plan.limits.clone(),
                });
            }
        }
        plans
    }

    /// The PlanPolicy's tiers that [`Self::plans`] leaves out, their names
    /// [escaped](crate::resources::common::escaped) so a message can show them.
    pub fn skipped_tiers(&self) -> Vec<String> {
        let mut skipped: Vec<String> = Vec::new();
        for plan in self.plan_policy.iter().flat_map(|p| &p.spec.plans) {
            let name = escaped(&plan.tier);
            if plan.tier.chars().any(is_hidden) && !skipped.contains(&name) {
                skipped.push(name);
            }
        }
        skipped
    }

    /// References to the policies in force: the PlanPolicy, then the AuthPolicy.
    pub fn policies(&self) -> Vec<DiscoveredPolicy> {
        let plan = self
            .plan_policy
            .as_deref()
            .map(|p| policy_ref("PlanPolicy", p));
        let auth = self
            .auth_policy
            .as_deref()
            .map(|p| policy_ref("AuthPolicy", p));
        plan.into_iter().chain(auth).collect()
    }

    /// The AuthPolicy's rules in force, by name in each section.
    pub fn auth_scheme(&self) -> Option<DiscoveredAuthScheme> {
        self.auth_policy.as_ref().map(|p| DiscoveredAuthScheme {
            authentication: p.spec.effective_authentication(),
            authorization: p.spec.effective(|r| &r.authorization),
            callbacks: p.spec.effective(|r| &r.callbacks),
            metadata: p.spec.effective(|r| &r.metadata),
            response: p.spec.effective_response(),
        })
    }

    /// The first API-key rule (in name order) and the AuthPolicy's namespace.
    pub fn api_key_rule(&self) -> Option<(ApiKeyAuth, Option<Credentials>, String)> {
        let policy = self.auth_policy.as_ref()?;
        policy
            .spec
            .effective_authentication()
            .into_values()
            .find_map(|rule: AuthenticationRule| {
                rule.api_key.map(|auth| {
                    (
                        auth,
                        rule.credentials,
                        policy.namespace().unwrap_or_default(),
                    )
                })
            })
    }

    /// The issuer of the first JWT rule (in name order), if any.
    pub fn jwt_issuer(&self) -> Option<String> {
        let policy = self.auth_policy.as_ref()?;
        policy
            .spec
            .effective_authentication()
            .into_values()
            .find_map(|rule| rule.jwt.and_then(|j| j.issuer_url))
    }

    /// Why the product's route cannot carry keys, if it cannot: it is missing, no longer exposed
    /// by the platform engineer, or not accepted by any Gateway. A reason and a message.
    pub fn route_problem(&self, product: &APIProduct) -> Option<(&'static str, String)> {
        let name = &product.spec.target_ref.name;
        match &self.route {
            None => Some(("RouteNotFound", format!("HTTPRoute {name} does not exist"))),
            Some(route) if !route.is_exposed() => Some((
                "RouteNotExposed",
                format!(
                    "HTTPRoute {name} is not (or no longer) annotated {}=\"true\" by a platform engineer",
                    crate::names::EXPOSED_ANNOTATION
                ),
            )),
            Some(route) if !route.is_accepted() => Some((
                "RouteNotAccepted",
                format!("no parent Gateway has accepted HTTPRoute {name}"),
            )),
            Some(_) => None,
        }
    }

    /// The host name consumers call: the route's first hostname.
    pub fn hostname(&self) -> Option<String> {
        self.route.as_ref()?.spec.hostnames.first().cloned()
    }
}

/// Resolves `product` against the caches: its route, then the policies attached to the route,
/// else to the route's parent Gateways. Route-level policies win; among policies at the same
/// level the oldest wins (then the name), so the choice is stable.
pub fn resolve(product: &APIProduct, caches: &Caches) -> Resolution {
    let namespace = product.namespace().unwrap_or_default();
    let route_name = &product.spec.target_ref.name;
    let route_target = Target {
        kind: "HTTPRoute".into(),
        namespace: namespace.clone(),
        name: route_name.clone(),
    };
    let route = caches
        .routes
        .get(&ObjectRef::new(route_name).within(&namespace));
    let gateways: Vec<Target> = route
        .iter()
        .flat_map(|r| &r.spec.parent_refs)
        .filter(|p| p.is_gateway())
        .map(|p| Target {
            kind: "Gateway".into(),
            namespace: p.namespace.clone().unwrap_or_else(|| namespace.clone()),
            name: p.name.clone(),
        })
        .collect();
    let mut levels = vec![vec![route_target.clone()]];
    if !gateways.is_empty() {
        levels.push(gateways.clone());
    }
    let plan_policy = pick(
        &caches.plan_policies,
        &levels,
        |p: &PlanPolicy| &p.spec.target_ref,
        |_| true,
    );
    let auth_policy = pick(
        &caches.auth_policies,
        &levels,
        |p: &AuthPolicy| &p.spec.target_ref,
        AuthPolicy::is_enforced,
    );
    let mut watched = vec![route_target];
    watched.extend(gateways);
    Resolution {
        route,
        plan_policy,
        auth_policy,
        watched,
    }
}

fn pick<P>(
    store: &Store<P>,
    levels: &[Vec<Target>],
    target_of: impl Fn(&P) -> &PolicyTargetRef,
    usable: impl Fn(&P) -> bool,
) -> Option<Arc<P>>
where
    P: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    levels.iter().find_map(|level| {
        let mut candidates = store.state_filter(|p| {
            usable(p)
                && p.meta().deletion_timestamp.is_none()
                && Target::of_policy(
                    target_of(p),
                    p.meta().namespace.as_deref().unwrap_or_default(),
                )
                .is_some_and(|t| level.contains(&t))
        });
        candidates.sort_by(|a, b| {
            (&a.meta().creation_timestamp, &a.meta().name)
                .cmp(&(&b.meta().creation_timestamp, &b.meta().name))
        });
        candidates.into_iter().next()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_tiers(tiers: &[&str]) -> Resolution {
        let policy: PlanPolicy = serde_json::from_value(serde_json::json!({
            "apiVersion": "extensions.kuadrant.io/v1alpha1", "kind": "PlanPolicy",
            "metadata": {"name": "plans", "namespace": "apps"},
            "spec": {
                "targetRef": {"group": GATEWAY_GROUP, "kind": "HTTPRoute", "name": "r"},
                "plans": tiers.iter().map(|t| serde_json::json!({"tier": t, "predicate": "true"})).collect::<Vec<_>>()
            }
        }))
        .unwrap();
        Resolution {
            plan_policy: Some(Arc::new(policy)),
            ..Resolution::default()
        }
    }

    #[test]
    fn tiers_with_hidden_characters_are_skipped_and_named_escaped() {
        let resolution = with_tiers(&[
            "gold",
            "gold\u{7}",
            "\u{202E}dlog",
            "silver",
            "gold\u{7}",
            "",
        ]);
        let tiers: Vec<_> = resolution.plans().into_iter().map(|p| p.tier).collect();
        assert_eq!(tiers, ["gold", "silver"]);
        assert_eq!(resolution.skipped_tiers(), [r"gold\u{7}", r"\u{202e}dlog"]);
        assert!(with_tiers(&["gold"]).skipped_tiers().is_empty());
    }
}
