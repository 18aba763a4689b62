//! Discovery against the real control plane: the crate's read models of the Gateway API and
//! Kuadrant objects it discovers, and what the controller writes into an APIProduct's status about
//! its route, its PlanPolicy and AuthPolicy (on the route or its Gateway), the JWT issuer's OIDC
//! document and the OpenAPI document. One controller process serves every test in this binary;
//! each test works in its own namespace.

use crate::support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::Redirect;
use axum::routing::get;
use devportal::names::foreign_condition::{ACCEPTED, ENFORCED};
use devportal::names::product_condition as condition_type;
use devportal::names::{EXPOSED_ANNOTATION, GATEWAY_GROUP};
use devportal::resources::gateway::HTTPRoute;
use devportal::resources::kuadrant::{AuthPolicy, PlanPolicy};
use devportal::resources::{APIProduct, ApprovalMode, Documentation};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use support::processes::shared_controller;
use support::{Persona, TestNamespace, control_plane, eventually, fixtures, stdout_of};

const WAIT: Duration = Duration::from_secs(30);
/// When the conditions written by hand here last changed.
const CONDITION_TIME: &str = "2026-01-02T03:04:05Z";

/// A local HTTP server for discovery documents: a fine OIDC issuer, an OpenAPI document, an
/// oversized one, one that fails twice before it works, a redirect to the cloud metadata address,
/// and on every other path what an internal service would answer.
async fn documents() -> (String, Arc<AtomicU32>) {
    let flaky_calls = Arc::new(AtomicU32::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let issuer = base.clone();
    let calls = flaky_calls.clone();
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move {
                axum::Json(json!({
                    "issuer": issuer,
                    "token_endpoint": format!("{issuer}/token"),
                    "jwks_uri": format!("{issuer}/certs"),
                }))
            }),
        )
        .route(
            "/openapi.json",
            get(|| async {
                r#"{"openapi":"3.0.3","info":{"title":"toys","version":"1"},"paths":{}}"#
            }),
        )
        .route("/huge.json", get(|| async { "x".repeat(600 * 1024) }))
        .route(
            "/flaky.json",
            get(move || {
                let calls = calls.clone();
                async move {
                    if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                        (StatusCode::SERVICE_UNAVAILABLE, "try again".to_string())
                    } else {
                        (StatusCode::OK, FLAKY_DOCUMENT.to_string())
                    }
                }
            }),
        )
        .route(
            "/metadata",
            get(|| async { Redirect::temporary("http://169.254.169.254/latest/meta-data/") }),
        )
        .fallback(|| async { "INTERNAL-ONLY: db_password=hunter2" });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, flaky_calls)
}

/// What `/flaky.json` serves once it works.
const FLAKY_DOCUMENT: &str =
    r#"{"openapi":"3.1.0","info":{"title":"flaky","version":"1"},"paths":{}}"#;

#[tokio::test]
async fn oidc_and_openapi_discovery_with_size_cap_and_retries() {
    let (base, flaky_calls) = documents().await;
    let (ns, admin) = {
        shared_controller();
        fixtures::published_namespace("docs", Persona::Owner, ApprovalMode::Automatic).await
    };
    Api::<AuthPolicy>::namespaced(admin.clone(), &ns.name)
        .patch(
            "auth",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"rules": {"authentication": {
                "sso": {"jwt": {"issuerUrl": base}}
            }}}})),
        )
        .await
        .unwrap();
    let owner =
        Api::<APIProduct>::namespaced(control_plane().client(Persona::Owner).await, &ns.name);
    let set_doc = |path: &str| {
        let docs = Documentation {
            openapi_spec_url: Some(format!("{base}{path}")),
            ..Documentation::default()
        };
        json!({"spec": {"documentation": docs}})
    };
    owner
        .patch(
            "toys",
            &PatchParams::default(),
            &Patch::Merge(set_doc("/openapi.json")),
        )
        .await
        .unwrap();
    let condition = |p: &APIProduct, t: &str| {
        p.status
            .as_ref()?
            .conditions
            .iter()
            .find(|c| c.type_ == t)
            .cloned()
    };
    let product = eventually("OIDC and OpenAPI discovery", WAIT, || async {
        let p = owner.get("toys").await.ok()?;
        // Ready converges with the rest (policies may reach the controller's caches after the
        // product does): wait for all three rather than catch an intermediate status.
        (condition(&p, "OIDCDiscovered")?.status == "True"
            && condition(&p, "OpenAPISpecReady")?.status == "True"
            && condition(&p, "Ready")?.status == "True")
            .then_some(p)
    })
    .await;
    let status = product.status.clone().unwrap();
    assert_eq!(
        status.oidc_discovery.unwrap().token_endpoint,
        Some(format!("{base}/token"))
    );
    assert!(status.openapi.unwrap().raw.contains("\"title\":\"toys\""));
    assert_eq!(condition(&product, "Ready").unwrap().status, "True");

    owner
        .patch(
            "toys",
            &PatchParams::default(),
            &Patch::Merge(set_doc("/huge.json")),
        )
        .await
        .unwrap();
    let product = eventually("the oversized document to be refused", WAIT, || async {
        let p = owner.get("toys").await.ok()?;
        let c = condition(&p, "OpenAPISpecReady")?;
        (c.status == "False" && c.reason == "FetchFailed").then_some(p)
    })
    .await;
    assert!(
        condition(&product, "OpenAPISpecReady")
            .unwrap()
            .message
            .contains("larger than the 524288 byte limit")
    );
    assert!(
        product.status.unwrap().openapi.is_none(),
        "a document of an older spec is not kept"
    );

    owner
        .patch(
            "toys",
            &PatchParams::default(),
            &Patch::Merge(set_doc("/flaky.json")),
        )
        .await
        .unwrap();
    let product = eventually("the flaky document after retries", WAIT, || async {
        let p = owner.get("toys").await.ok()?;
        (condition(&p, "OpenAPISpecReady")?.status == "True").then_some(p)
    })
    .await;
    assert_eq!(product.status.unwrap().openapi.unwrap().raw, FLAKY_DOCUMENT);
    assert_eq!(
        flaky_calls.load(Ordering::SeqCst),
        3,
        "two failures, then success, in one reconcile"
    );
}

/// An API owner aiming discovery at an allowed server that does not answer with a document, or
/// that redirects into the private network: nothing of the answer reaches the status consumers
/// read, and the condition says why without quoting it.
#[tokio::test]
async fn only_openapi_from_allowed_destinations_is_stored() {
    let (base, _) = documents().await;
    let (ns, admin) = {
        shared_controller();
        fixtures::published_namespace("ssrf", Persona::Owner, ApprovalMode::Automatic).await
    };
    let owner =
        Api::<APIProduct>::namespaced(control_plane().client(Persona::Owner).await, &ns.name);
    let consumer =
        Api::<APIProduct>::namespaced(control_plane().client(Persona::Consumer).await, &ns.name);
    let point_at = |path: &str| {
        Patch::Merge(
            json!({"spec": {"documentation": {"openAPISpecURL": format!("{base}{path}")}}}),
        )
    };
    let condition = |p: &APIProduct, t: &str| {
        p.status
            .as_ref()?
            .conditions
            .iter()
            .find(|c| c.type_ == t)
            .cloned()
    };
    // A good document first, so that "nothing stored" below is not merely "nothing yet".
    owner
        .patch("toys", &PatchParams::default(), &point_at("/openapi.json"))
        .await
        .unwrap();
    eventually("the OpenAPI document", WAIT, || async {
        let p = owner.get("toys").await.ok()?;
        (condition(&p, "OpenAPISpecReady")?.status == "True").then_some(())
    })
    .await;

    for (path, reason, says) in [
        (
            "/internal",
            "NotAnOpenAPIDocument",
            "is not an OpenAPI 3.x or Swagger 2.0 document: it has no `openapi` (3.x) or \
             `swagger` (2.0) field",
        ),
        (
            "/metadata",
            "DestinationNotAllowed",
            "a redirect was refused: 169.254.169.254 is a link-local address",
        ),
    ] {
        owner
            .patch("toys", &PatchParams::default(), &point_at(path))
            .await
            .unwrap();
        let refused = eventually(&format!("{path} to be refused"), WAIT, || async {
            let p = owner.get("toys").await.ok()?;
            condition(&p, "OpenAPISpecReady").filter(|c| c.reason == reason)
        })
        .await;
        assert_eq!(refused.status, "False");
        assert!(refused.message.contains(says), "{}", refused.message);
        assert!(!refused.message.contains("hunter2"), "{}", refused.message);
        let published = consumer.get("toys").await.unwrap().status.unwrap();
        assert!(
            published.openapi.is_none(),
            "nothing of {path} is published"
        );
    }

    Api::<AuthPolicy>::namespaced(admin, &ns.name)
        .patch(
            "auth",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"rules": {"authentication": {
                "sso": {"jwt": {"issuerUrl": format!("{base}/internal-issuer")}}
            }}}})),
        )
        .await
        .unwrap();
    let product = eventually("the internal issuer to be refused", WAIT, || async {
        let p = owner.get("toys").await.ok()?;
        let c = condition(&p, "OIDCDiscovered")?;
        (c.reason == "NotADiscoveryDocument").then_some(p)
    })
    .await;
    let oidc = condition(&product, "OIDCDiscovered").unwrap();
    assert_eq!(oidc.status, "False");
    assert!(
        oidc.message.contains("it is not a JSON object"),
        "{}",
        oidc.message
    );
    assert!(!oidc.message.contains("hunter2"), "{}", oidc.message);
    assert!(product.status.unwrap().oidc_discovery.is_none());
}

#[tokio::test]
async fn product_status_reports_a_missing_route_and_policies() {
    shared_controller();
    let ns = TestNamespace::new("missing").await;
    let owner =
        Api::<APIProduct>::namespaced(control_plane().client(Persona::Owner).await, &ns.name);
    owner
        .create(
            &PostParams::default(),
            &fixtures::product("toys", "nowhere"),
        )
        .await
        .unwrap();
    let product = eventually("status on a product without a route", WAIT, || async {
        owner.get("toys").await.ok().filter(|p| p.status.is_some())
    })
    .await;
    let status = product.status.unwrap();
    let by_type: BTreeMap<_, _> = status
        .conditions
        .iter()
        .map(|c| (c.type_.as_str(), (c.status.as_str(), c.reason.as_str())))
        .collect();
    assert_eq!(by_type[condition_type::READY], ("False", "RouteNotFound"));
    assert_eq!(by_type[condition_type::PLAN_POLICY], ("False", "NotFound"));
    assert_eq!(by_type[condition_type::AUTH_POLICY], ("False", "NotFound"));
    assert_eq!(by_type[condition_type::OIDC], ("False", "NoJWTIssuer"));
    assert!(
        !by_type.contains_key(condition_type::OPENAPI),
        "no OpenAPISpecReady without a spec URL: {by_type:?}"
    );
    assert!(status.discovered_policies.is_empty());
    assert_eq!(status.observed_generation, Some(1));

    // A route that appears later is picked up through the index, without touching the product.
    let admin = control_plane().client(Persona::Admin).await;
    Api::<HTTPRoute>::namespaced(admin.clone(), &ns.name)
        .create(&PostParams::default(), &fixtures::route("nowhere"))
        .await
        .unwrap();
    fixtures::accept_route(&admin, &ns.name, "nowhere").await;
    eventually("the route to be noticed", WAIT, || async {
        let p = owner.get("toys").await.ok()?;
        let ready = p
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == condition_type::READY)?;
        (ready.reason == "PlanPolicyNotFound").then_some(())
    })
    .await;
}

#[tokio::test]
async fn gateway_level_policies_apply_when_the_route_has_none() {
    shared_controller();
    let ns = TestNamespace::new("gateway").await;
    let admin = control_plane().client(Persona::Admin).await;
    let mut route = fixtures::route("toystore");
    route.spec.parent_refs[0].namespace = None; // the Gateway lives in the route's namespace
    Api::<HTTPRoute>::namespaced(admin.clone(), &ns.name)
        .create(&PostParams::default(), &route)
        .await
        .unwrap();
    fixtures::accept_route(&admin, &ns.name, "toystore").await;
    let mut plans = fixtures::plan_policy("gateway-plans", "unused");
    plans.spec.target_ref.kind = "Gateway".into();
    plans.spec.target_ref.name = "external".into();
    Api::<PlanPolicy>::namespaced(admin.clone(), &ns.name)
        .create(&PostParams::default(), &plans)
        .await
        .unwrap();
    let owner =
        Api::<APIProduct>::namespaced(control_plane().client(Persona::Owner).await, &ns.name);
    owner
        .create(
            &PostParams::default(),
            &fixtures::product("toys", "toystore"),
        )
        .await
        .unwrap();
    eventually("gateway-level plans", WAIT, || async {
        let p = owner.get("toys").await.ok()?;
        (p.status?.plan_tiers.as_deref() == Some("gold,silver")).then_some(())
    })
    .await;
    // A route-level PlanPolicy wins over the gateway's.
    let mut route_plans = fixtures::plan_policy("route-plans", "toystore");
    route_plans.spec.plans.truncate(1);
    Api::<PlanPolicy>::namespaced(admin, &ns.name)
        .create(&PostParams::default(), &route_plans)
        .await
        .unwrap();
    eventually("route-level plans to win", WAIT, || async {
        let p = owner.get("toys").await.ok()?;
        (p.status?.plan_tiers.as_deref() == Some("gold")).then_some(())
    })
    .await;
}

/// The Kuadrant Backstage plugin reads the AuthPolicy's name as the third word of the
/// `AuthPolicyDiscovered` message; `status.discoveredPolicies` says the same in structure.
#[tokio::test]
async fn discovered_policies_are_referenced_and_worded_as_upstream() {
    shared_controller();
    let ns = TestNamespace::new("policies").await;
    let admin = control_plane().client(Persona::Admin).await;
    fixtures::published_product(&admin, &admin, &ns.name, ApprovalMode::Manual).await;
    let owner =
        Api::<APIProduct>::namespaced(control_plane().client(Persona::Owner).await, &ns.name);
    let status = eventually("both policies discovered", WAIT, || async {
        let status = owner.get("toys").await.ok()?.status?;
        (status.discovered_policies.len() == 2).then_some(status)
    })
    .await;
    let refs: Vec<_> = status
        .discovered_policies
        .iter()
        .map(|p| (p.kind.as_str(), p.namespace.as_str(), p.name.as_str()))
        .collect();
    assert_eq!(
        refs,
        [
            ("PlanPolicy", ns.name.as_str(), "plans"),
            ("AuthPolicy", ns.name.as_str(), "auth")
        ]
    );
    let message = |type_: &str| {
        let c = status.conditions.iter().find(|c| c.type_ == type_).unwrap();
        assert_eq!(c.status, "True", "{c:?}");
        c.message.clone()
    };
    let auth = message(condition_type::AUTH_POLICY);
    assert_eq!(
        auth,
        "Discovered AuthPolicy auth targeting HTTPRoute toystore"
    );
    assert_eq!(auth.split(' ').nth(2), Some("auth"), "the plugin's parse");
    assert_eq!(
        message(condition_type::PLAN_POLICY),
        "Discovered PlanPolicy plans targeting HTTPRoute toystore"
    );
    assert!(
        status
            .conditions
            .iter()
            .all(|c| c.type_ != condition_type::OPENAPI),
        "no OpenAPISpecReady without a spec URL"
    );
}

#[tokio::test]
async fn read_models_parse_foreign_objects_served_by_the_apiserver() {
    let ns = TestNamespace::new("foreign").await;
    let cp = control_plane();
    // Upstream-shaped manifests, with fields the read models do not know about.
    let manifest = format!(
        r#"apiVersion: {GATEWAY_GROUP}/v1
kind: HTTPRoute
metadata: {{name: toystore, namespace: {ns}, annotations: {{{EXPOSED_ANNOTATION}: "true"}}}}
spec:
  parentRefs: [{{name: external, namespace: gateway-system}}]
  hostnames: [api.toystore.example.com]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /toys}}}}]
    backendRefs: [{{name: toystore, port: 80}}]
---
apiVersion: kuadrant.io/v1
kind: AuthPolicy
metadata: {{name: toystore-auth, namespace: {ns}}}
spec:
  targetRef: {{group: {GATEWAY_GROUP}, kind: HTTPRoute, name: toystore}}
  rules:
    authentication:
      api-key-users:
        apiKey:
          selector: {{matchLabels: {{app: toystore, test.devportal.kuadrant.io/policy: foreign}}}}
          allNamespaces: true
        credentials: {{authorizationHeader: {{prefix: APIKEY}}}}
    authorization:
      only-gold: {{patternMatching: {{patterns: [{{predicate: "true"}}]}}}}
---
apiVersion: extensions.kuadrant.io/v1alpha1
kind: PlanPolicy
metadata: {{name: toystore-plans, namespace: {ns}}}
spec:
  targetRef: {{group: {GATEWAY_GROUP}, kind: HTTPRoute, name: toystore}}
  plans:
  - tier: gold
    predicate: auth.identity.tier == "gold"
    limits: {{daily: 1000, custom: [{{limit: 10, window: 1s}}]}}
  - tier: bronze
    limits: {{monthly: 50}}
"#,
        ns = ns.name
    );
    stdout_of(&cp.kubectl(Persona::Admin, &["apply", "-f", "-"], Some(&manifest)));
    let admin = cp.client(Persona::Admin).await;
    let condition = |t: &str| json!({"type": t, "status": "True", "reason": t, "message": "", "lastTransitionTime": CONDITION_TIME, "observedGeneration": 1});
    Api::<HTTPRoute>::namespaced(admin.clone(), &ns.name)
        .patch_status(
            "toystore",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"parents": [{
                "parentRef": {"name": "external", "namespace": "gateway-system"},
                "controllerName": "example.com/gateway-controller",
                "conditions": [condition(ACCEPTED), condition("ResolvedRefs")]
            }]}})),
        )
        .await
        .expect("route status written");
    Api::<AuthPolicy>::namespaced(admin.clone(), &ns.name)
        .patch_status(
            "toystore-auth",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "conditions": [condition(ACCEPTED), condition(ENFORCED)], "observedGeneration": 1
            }})),
        )
        .await
        .expect("policy status written");

    let route = Api::<HTTPRoute>::namespaced(admin.clone(), &ns.name)
        .get("toystore")
        .await
        .unwrap();
    assert!(route.is_accepted());
    assert_eq!(route.spec.hostnames, ["api.toystore.example.com"]);
    let auth = Api::<AuthPolicy>::namespaced(admin.clone(), &ns.name)
        .get("toystore-auth")
        .await
        .unwrap();
    assert!(auth.is_enforced());
    let rules = auth.spec.effective_authentication();
    assert!(
        rules["api-key-users"]
            .api_key
            .as_ref()
            .unwrap()
            .all_namespaces
    );
    let plans = Api::<PlanPolicy>::namespaced(admin, &ns.name)
        .get("toystore-plans")
        .await
        .unwrap();
    let tiers: Vec<_> = plans
        .spec
        .plans
        .iter()
        .map(|p| (p.tier.as_str(), p.limits.daily, p.limits.monthly))
        .collect();
    assert_eq!(
        tiers,
        [("gold", Some(1000), None), ("bronze", None, Some(50))]
    );

    // The typed fixtures the other tests use are accepted by the same CRDs.
    let admin = cp.client(Persona::Admin).await;
    Api::<HTTPRoute>::namespaced(admin.clone(), &ns.name)
        .create(&PostParams::default(), &fixtures::route("other"))
        .await
        .unwrap();
    Api::<AuthPolicy>::namespaced(admin.clone(), &ns.name)
        .create(
            &PostParams::default(),
            &fixtures::auth_policy("other-auth", "other"),
        )
        .await
        .unwrap();
    Api::<PlanPolicy>::namespaced(admin, &ns.name)
        .create(
            &PostParams::default(),
            &fixtures::plan_policy("other-plans", "other"),
        )
        .await
        .unwrap();
}
