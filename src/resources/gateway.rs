//! Read model for Gateway API `HTTPRoute` (`gateway.networking.k8s.io/v1`).

use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// `HTTPRoute.spec`, reduced to what devportal reads.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "HTTPRoute",
    plural = "httproutes",
    namespaced,
    status = "HTTPRouteStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct HTTPRouteSpec {
    /// The Gateways (or other parents) the route attaches to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parent_refs: Vec<ParentReference>,
    /// Host names the route serves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
}

/// A route's reference to its parent, normally a Gateway.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ParentReference {
    /// API group of the parent; Gateway API's own group when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind of the parent; `Gateway` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Namespace of the parent; the route's own when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name of the parent.
    pub name: String,
    /// Listener of the parent the route attaches to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}

/// `HTTPRoute.status`: per-parent acceptance.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HTTPRouteStatus {
    /// One entry per parent that has processed the route.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<RouteParentStatus>,
}

/// What one parent says about a route.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteParentStatus {
    /// The parent this entry is about.
    pub parent_ref: ParentReference,
    /// The gateway controller that wrote the entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_name: Option<String>,
    /// The parent's conditions (`Accepted`, `ResolvedRefs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ForeignCondition>,
}

/// A condition on a foreign object, parsed leniently: only `type` and `status` are required, so a
/// condition missing its timestamps or reason (which some controllers omit) still reads.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ForeignCondition {
    /// Condition type, such as `Accepted`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ForeignCondition {
    /// A condition with only a type and a status.
    pub fn new(type_: &str, status: &str) -> Self {
        Self {
            type_: type_.into(),
            status: status.into(),
            ..Self::default()
        }
    }

    /// Whether `conditions` holds a condition of `type_` whose status is `True`.
    pub fn is_true(conditions: &[ForeignCondition], type_: &str) -> bool {
        conditions
            .iter()
            .any(|c| c.type_ == type_ && c.status == "True")
    }
}

impl ParentReference {
    /// Whether this reference names a Gateway (the default kind in Gateway API).
    pub fn is_gateway(&self) -> bool {
        self.group
            .as_deref()
            .is_none_or(|g| g == "gateway.networking.k8s.io")
            && self.kind.as_deref().is_none_or(|k| k == "Gateway")
    }
}

impl HTTPRoute {
    /// Whether at least one parent has accepted the route.
    pub fn is_accepted(&self) -> bool {
        self.status.as_ref().is_some_and(|s| {
            s.parents
                .iter()
                .any(|p| ForeignCondition::is_true(&p.conditions, "Accepted"))
        })
    }

    /// Whether a platform engineer marked the route as publishable
    /// (`devportal.kuadrant.io/exposed: "true"`).
    pub fn is_exposed(&self) -> bool {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(crate::names::EXPOSED_ANNOTATION))
            .is_some_and(|v| v == "true")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn route_reads_parents_and_acceptance_ignoring_unknown_fields() {
        let route: HTTPRoute = serde_json::from_value(json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "toystore", "namespace": "apps"},
            "spec": {
                "parentRefs": [{"name": "external", "namespace": "gateway-system"}],
                "hostnames": ["api.toystore.example"],
                "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                           "backendRefs": [{"name": "toystore", "port": 80}]}]
            },
            "status": {"parents": [{
                "parentRef": {"name": "external", "namespace": "gateway-system"},
                "controllerName": "istio.io/gateway-controller",
                "conditions": [{"type": "Accepted", "status": "True", "observedGeneration": 1}]
            }]}
        }))
        .expect("a real HTTPRoute deserializes");
        assert!(route.is_accepted());
        assert!(route.spec.parent_refs[0].is_gateway());
        assert_eq!(route.spec.hostnames, ["api.toystore.example"]);
    }

    #[test]
    fn route_without_status_is_not_accepted() {
        let route = HTTPRoute::new("r", HTTPRouteSpec::default());
        assert!(!route.is_accepted());
    }
}
