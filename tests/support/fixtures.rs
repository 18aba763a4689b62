//! Sample objects for tests: a route, policies, a product and a key, built from the crate's types.

use devportal::resources::gateway::{HTTPRoute, HTTPRouteSpec, ParentReference};
use devportal::resources::kuadrant::{
    ApiKeyAuth, AuthPolicy, AuthPolicySpec, AuthRules, AuthenticationRule, Credentials,
    HeaderPrefix, Plan, PlanPolicy, PlanPolicySpec, PolicyTargetRef,
};
use devportal::resources::{
    APIKey, APIKeySpec, APIProduct, APIProductSpec, ApprovalMode, HTTPRouteRef, Limits,
    PublishStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// An HTTPRoute attached to Gateway `external`, marked as publishable.
pub fn route(name: &str) -> HTTPRoute {
    let mut route = HTTPRoute::new(
        name,
        HTTPRouteSpec {
            parent_refs: vec![ParentReference {
                name: "external".into(),
                namespace: Some("gateway-system".into()),
                ..ParentReference::default()
            }],
            hostnames: vec![format!("{name}.example.com")],
        },
    );
    route.metadata.annotations = Some(
        [(
            "devportal.kuadrant.io/exposed".to_string(),
            "true".to_string(),
        )]
        .into(),
    );
    route
}

fn route_target(route: &str) -> PolicyTargetRef {
    PolicyTargetRef {
        group: "gateway.networking.k8s.io".into(),
        kind: "HTTPRoute".into(),
        name: route.into(),
        section_name: None,
    }
}

/// A PlanPolicy with `gold` (daily 100) and `silver` (daily 10) tiers on `route`.
pub fn plan_policy(name: &str, route: &str) -> PlanPolicy {
    let tier = |tier: &str, daily| Plan {
        tier: tier.into(),
        predicate: Some(format!(
            "auth.identity.metadata.annotations[\"secret.kuadrant.io/plan-id\"] == \"{tier}\""
        )),
        limits: Limits {
            daily: Some(daily),
            ..Limits::default()
        },
    };
    PlanPolicy::new(
        name,
        PlanPolicySpec {
            target_ref: route_target(route),
            plans: vec![tier("gold", 100), tier("silver", 10)],
        },
    )
}

/// An AuthPolicy on `route` accepting API keys from Secrets labelled `app: <route>`.
pub fn auth_policy(name: &str, route: &str) -> AuthPolicy {
    let rule = AuthenticationRule {
        api_key: Some(ApiKeyAuth {
            selector: LabelSelector {
                match_labels: Some([("app".to_string(), route.to_string())].into()),
                match_expressions: None,
            },
            all_namespaces: false,
        }),
        jwt: None,
        credentials: Some(Credentials {
            authorization_header: Some(HeaderPrefix {
                prefix: Some("APIKEY".into()),
            }),
            ..Credentials::default()
        }),
    };
    AuthPolicy::new(
        name,
        AuthPolicySpec {
            target_ref: route_target(route),
            rules: Some(AuthRules {
                authentication: [("api-key-users".to_string(), rule)].into(),
            }),
            defaults: None,
            overrides: None,
        },
    )
}

/// A published, automatically approved product on `route`.
pub fn product(name: &str, route: &str) -> APIProduct {
    APIProduct::new(
        name,
        APIProductSpec {
            display_name: format!("The {name} API"),
            description: Some("Sample product".into()),
            version: Some("v1".into()),
            tags: vec!["sample".into()],
            approval_mode: ApprovalMode::Automatic,
            publish_status: PublishStatus::Published,
            target_ref: HTTPRouteRef::route(route),
            documentation: None,
            contact: None,
        },
    )
}

/// A key request for `product` at `tier`.
pub fn key(name: &str, product: &str, tier: &str) -> APIKey {
    APIKey::new(
        name,
        APIKeySpec {
            use_case: Some("integration test".into()),
            ..APIKeySpec::new(product, tier)
        },
    )
}
