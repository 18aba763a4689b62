//! Sample objects for tests: a route, policies, a product and a key, built from the crate's types;
//! and the usual platform and product set up in a namespace.

use devportal::names::foreign_condition::{ACCEPTED, ENFORCED};
use devportal::names::{EXPOSED_ANNOTATION, GATEWAY_GROUP, PLAN_ANNOTATION, product_condition};
use devportal::resources::gateway::{HTTPRoute, HTTPRouteSpec, ParentReference};
use devportal::resources::kuadrant::{
    ApiKeyAuth, AuthPolicy, AuthPolicySpec, AuthRules, AuthenticationRule, Credentials,
    HeaderPrefix, Plan, PlanPolicy, PlanPolicySpec, PolicyTargetRef,
};
use devportal::resources::{
    APIKey, APIKeySpec, APIProduct, APIProductSpec, ApprovalMode, HTTPRouteRef, Limits,
    PublishStatus, RequestedBy,
};
use k8s_openapi::api::core::v1::ResourceQuota;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};

use super::control_plane::control_plane;
use super::namespaces::TestNamespace;
use super::personas::Persona;
use super::waits::eventually;

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
    route.metadata.annotations =
        Some([(EXPOSED_ANNOTATION.to_string(), "true".to_string())].into());
    route
}

fn route_target(route: &str) -> PolicyTargetRef {
    PolicyTargetRef {
        group: GATEWAY_GROUP.into(),
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
            "auth.identity.metadata.annotations[\"{PLAN_ANNOTATION}\"] == \"{tier}\""
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

/// The label [`auth_policy`] makes each policy's selector its own with.
pub const POLICY_LABEL: &str = "test.devportal.kuadrant.io/policy";

/// An AuthPolicy on `route` accepting API keys from Secrets labelled `app: <route>` and
/// [`POLICY_LABEL`] with a value no other policy of this test binary has: every AuthConfig selects
/// from one label space, and devportal refuses products whose keys would work on another
/// product's API, so the policies of tests running side by side must not overlap.
pub fn auth_policy(name: &str, route: &str) -> AuthPolicy {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let own = format!(
        "p{}",
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let rule = AuthenticationRule {
        api_key: Some(ApiKeyAuth {
            selector: LabelSelector {
                match_labels: Some(
                    [
                        ("app".to_string(), route.to_string()),
                        (POLICY_LABEL.to_string(), own),
                    ]
                    .into(),
                ),
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
        ..AuthenticationRule::default()
    };
    AuthPolicy::new(
        name,
        AuthPolicySpec {
            target_ref: route_target(route),
            rules: Some(AuthRules {
                authentication: [("api-key-users".to_string(), rule)].into(),
                ..AuthRules::default()
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

/// A key request for `product` at `tier` with `requestedBy` stamped for the consumer persona, as
/// the webhook stamps it (the control planes of the controller tests run no webhook).
pub fn requested_key(name: &str, product: &str, tier: &str) -> APIKey {
    let mut key = key(name, product, tier);
    key.spec.requested_by = Some(RequestedBy {
        user_id: Persona::Consumer.name().into(),
        email: None,
    });
    key
}

/// A condition of `type_` that holds, as gateways and Kuadrant write them.
pub fn true_condition(type_: &str) -> serde_json::Value {
    serde_json::json!({"type": type_, "status": "True", "reason": type_, "message": "",
                       "lastTransitionTime": "2026-01-01T00:00:00Z"})
}

/// Writes the status a gateway writes once it accepts HTTPRoute `name`.
pub async fn accept_route(admin: &Client, ns: &str, name: &str) {
    Api::<HTTPRoute>::namespaced(admin.clone(), ns)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {"parents": [{
                "parentRef": {"name": "external", "namespace": "gateway-system"},
                "controllerName": "example.com/gateway",
                "conditions": [true_condition(ACCEPTED)]
            }]}})),
        )
        .await
        .expect("route status written");
}

/// Writes the status Kuadrant writes once AuthPolicy `name` is accepted and enforced.
pub async fn enforce_auth_policy(admin: &Client, ns: &str, name: &str) {
    Api::<AuthPolicy>::namespaced(admin.clone(), ns)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {
                "conditions": [true_condition(ACCEPTED), true_condition(ENFORCED)]
            }})),
        )
        .await
        .expect("policy status written");
}

/// What a platform engineer provides, as the admin: the exposed route `plans` targets, accepted
/// by its gateway, with `plans` and the enforced `auth` on it.
pub async fn platform(admin: &Client, ns: &str, plans: PlanPolicy, auth: AuthPolicy) {
    let route_name = plans.spec.target_ref.name.clone();
    Api::<HTTPRoute>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &route(&route_name))
        .await
        .expect("route created");
    accept_route(admin, ns, &route_name).await;
    Api::<PlanPolicy>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &plans)
        .await
        .expect("plan policy created");
    let auth_name = auth.metadata.name.clone().unwrap_or_default();
    Api::<AuthPolicy>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &auth)
        .await
        .expect("auth policy created");
    enforce_auth_policy(admin, ns, &auth_name).await;
}

/// The usual setup: the platform of [`platform`] with route `toystore`, PlanPolicy `plans` (gold,
/// silver) and enforced AuthPolicy `auth`, created by `admin`, and on it the APIProduct `toys` in
/// `mode`, created by `creator` (the owner or the admin).
pub async fn published_product(admin: &Client, creator: &Client, ns: &str, mode: ApprovalMode) {
    platform(
        admin,
        ns,
        plan_policy("plans", "toystore"),
        auth_policy("auth", "toystore"),
    )
    .await;
    let mut toys = product("toys", "toystore");
    toys.spec.approval_mode = mode;
    Api::<APIProduct>::namespaced(creator.clone(), ns)
        .create(&PostParams::default(), &toys)
        .await
        .expect("product created");
}

/// Waits (up to `timeout`) until the product `toys` in `ns` is Ready: its plans and its enforced
/// AuthPolicy both seen by the controller. Plans alone are not enough: the AuthPolicy's watch may
/// lag the PlanPolicy's, and a key created in between fails with `NoAPIKeyAuth` until it arrives.
pub async fn product_ready(admin: &Client, ns: &str, timeout: std::time::Duration) {
    let products = Api::<APIProduct>::namespaced(admin.clone(), ns);
    eventually("toys to be Ready", timeout, || async {
        let status = products.get("toys").await.ok()?.status?;
        let ready = status
            .conditions
            .iter()
            .any(|c| c.type_ == product_condition::READY && c.status == "True");
        (ready && !status.discovered_plans.is_empty()).then_some(())
    })
    .await;
}

/// The usual automatically approving product `toys` in `ns` (by `owner`), Ready, and the keys
/// `names` (tier gold) requested on it by the consumer; returns the consumer's APIKey API there.
pub async fn automatic_keys(
    (admin, owner): (&Client, &Client),
    ns: &str,
    names: &[&str],
    timeout: std::time::Duration,
) -> Api<APIKey> {
    published_product(admin, owner, ns, ApprovalMode::Automatic).await;
    product_ready(admin, ns, timeout).await;
    let keys = Api::<APIKey>::namespaced(control_plane().client(Persona::Consumer).await, ns);
    for name in names {
        keys.create(&PostParams::default(), &requested_key(name, "toys", "gold"))
            .await
            .expect("key created");
    }
    keys
}

/// A fresh namespace holding the usual setup of [`published_product`], with the product created
/// by `creator` in `mode`; returned with an admin client.
pub async fn published_namespace(
    prefix: &str,
    creator: Persona,
    mode: ApprovalMode,
) -> (TestNamespace, Client) {
    let ns = TestNamespace::new(prefix).await;
    let admin = control_plane().client(Persona::Admin).await;
    let creator = control_plane().client(creator).await;
    published_product(&admin, &creator, &ns.name, mode).await;
    (ns, admin)
}

/// The name of the quota [`forbid_secrets`] creates.
pub const NO_SECRETS_QUOTA: &str = "no-secrets";

/// A ResourceQuota `no-secrets` allowing no Secret in `ns`, with the status the quota controller
/// would write (it does not run on the local control plane, and the API server enforces a quota
/// only once it has a status). Delete it to lift the quota.
pub async fn forbid_secrets(admin: &Client, ns: &str) -> Api<ResourceQuota> {
    let quotas = Api::<ResourceQuota>::namespaced(admin.clone(), ns);
    let quota = serde_json::from_value(
        serde_json::json!({"metadata": {"name": NO_SECRETS_QUOTA}, "spec": {"hard": {"secrets": "0"}}}),
    )
    .expect("a ResourceQuota");
    quotas
        .create(&PostParams::default(), &quota)
        .await
        .expect("quota created");
    quotas
        .patch_status(
            NO_SECRETS_QUOTA,
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"status": {"hard": {"secrets": "0"}, "used": {"secrets": "0"}}}),
            ),
        )
        .await
        .expect("quota status written");
    quotas
}
