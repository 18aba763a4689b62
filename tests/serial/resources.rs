//! APIProduct and APIKey against the real kube-apiserver: round trips, the CEL rule on
//! `targetRef`, printer columns, defaults and strict field validation.

use crate::support;

use devportal::names::{
    API_KEY_DATA, API_VERSION, CONTROLLER_MANAGER, GATEWAY_GROUP, GROUP, product_condition,
};
use devportal::resources::{
    APIKey, APIKeyPhase, APIProduct, ApprovalMode, Documentation, LocalSecretRef, PublishStatus,
    RequestedBy,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Resource};
use serde_json::json;
use support::serial::exclusive_cluster;
use support::{Persona, TestNamespace, control_plane, fixtures, stderr_of_failure, stdout_of};

const CONDITION_TIME: &str = "2026-01-02T03:04:05Z";

/// Writes `status` on an object of kind `K` as devportal's controller identity, by server-side apply.
async fn apply_status<K>(ns: &str, name: &str, status: serde_json::Value)
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let controller = control_plane().client(Persona::Controller).await;
    let patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    Api::<K>::namespaced(controller, ns)
        .patch_status(
            name,
            &PatchParams::apply(CONTROLLER_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .expect("the controller identity writes status");
}

#[tokio::test]
async fn product_round_trips_every_field_and_its_status() {
    let _serial = exclusive_cluster().await;
    let ns = TestNamespace::new("product").await;
    let owner =
        Api::<APIProduct>::namespaced(control_plane().client(Persona::Owner).await, &ns.name);

    let mut product = fixtures::product("toys", "toystore");
    product.spec.documentation = Some(Documentation {
        openapi_spec_url: Some("https://toys.example.com/openapi.json".into()),
        swagger_ui: Some("https://toys.example.com/ui".into()),
        docs_url: Some("https://docs.example.com/toys".into()),
        git_repository: Some("https://git.example.com/toys".into()),
        techdocs_ref: Some("url:https://git.example.com/toys".into()),
    });
    product.spec.contact = Some(devportal::resources::Contact {
        team: Some("toys".into()),
        email: Some("toys@example.com".into()),
        slack: Some("#toys".into()),
        url: Some("https://toys.example.com".into()),
    });
    let created = owner
        .create(&PostParams::default(), &product)
        .await
        .expect("owner creates a product");
    assert_eq!(
        created.spec, product.spec,
        "the apiserver stores the spec unchanged"
    );

    apply_status::<APIProduct>(
        &ns.name,
        "toys",
        json!({
            "observedGeneration": 1,
            "discoveredPlans": [
                {"tier": "gold", "limits": {"daily": 100, "custom": [{"limit": 5, "window": "1s"}]}},
                {"tier": "silver", "limits": {"monthly": 1000}}
            ],
            "discoveredAuthScheme": {"authentication": {"api-key-users": {
                "apiKey": {"selector": {"matchLabels": {"app": "toystore"}}, "allNamespaces": true},
                "credentials": {"authorizationHeader": {"prefix": "APIKEY"}}
            }}},
            "oidcDiscovery": {"tokenEndpoint": "https://issuer.example.com/token"},
            "openapi": {"raw": "{\"openapi\":\"3.0.0\"}", "lastSyncTime": CONDITION_TIME},
            "conditions": [{"type": product_condition::READY, "status": "True", "reason": "Discovered",
                            "message": "route and policies found", "lastTransitionTime": CONDITION_TIME}]
        }),
    )
    .await;

    let read = owner.get("toys").await.expect("owner reads the product");
    assert_eq!(read.spec, product.spec);
    assert_eq!(
        read.plan("silver").and_then(|p| p.limits.monthly),
        Some(1000)
    );
    let status = read.status.expect("status stored");
    assert_eq!(status.observed_generation, Some(1));
    let tiers: Vec<_> = status
        .discovered_plans
        .iter()
        .map(|p| p.tier.as_str())
        .collect();
    assert_eq!(tiers, ["gold", "silver"]);
    assert_eq!(status.discovered_plans[0].limits.custom[0].window, "1s");
    let rule = &status
        .discovered_auth_scheme
        .expect("auth scheme stored")
        .authentication["api-key-users"];
    assert!(rule.api_key.as_ref().unwrap().all_namespaces);
    assert_eq!(
        status.oidc_discovery.unwrap().token_endpoint.as_deref(),
        Some("https://issuer.example.com/token")
    );
    assert_eq!(
        status.openapi.unwrap().last_sync_time,
        Time(CONDITION_TIME.parse().unwrap())
    );
    assert_eq!(status.conditions[0].type_, product_condition::READY);
}

#[tokio::test]
async fn key_round_trips_with_timestamps_and_status() {
    let _serial = exclusive_cluster().await;
    let ns = TestNamespace::new("key").await;
    let consumer =
        Api::<APIKey>::namespaced(control_plane().client(Persona::Consumer).await, &ns.name);

    let expires: Timestamp = "2030-06-01T12:00:00Z".parse().unwrap();
    let mut key = fixtures::key("mine", "toys", "gold");
    key.spec.api_product_ref.namespace = Some("apps".into());
    key.spec.requested_by = Some(RequestedBy {
        user_id: "consumer".into(),
        email: Some("consumer@example.com".into()),
    });
    key.spec.expires_at = Some(Time(expires));
    key.spec.secret_ref = Some(LocalSecretRef {
        name: "my-own-key".into(),
    });
    let created = consumer
        .create(&PostParams::default(), &key)
        .await
        .expect("consumer creates a key");
    assert_eq!(created.spec, key.spec);
    assert_eq!(created.product_namespace(), Some("apps"));

    apply_status::<APIKey>(
        &ns.name,
        "mine",
        json!({
            "observedGeneration": 1,
            "phase": "Approved",
            "conditions": APIKeyPhase::ALL.iter().map(|p| json!({
                "type": p.as_str(),
                "status": if *p == APIKeyPhase::Approved { "True" } else { "False" },
                "reason": "Test", "message": "", "lastTransitionTime": CONDITION_TIME
            })).collect::<Vec<_>>(),
            "secretRef": {"name": "apikey-mine", "key": API_KEY_DATA},
            "apiHostname": "toystore.example.com",
            "limits": {"daily": 100},
            "authScheme": {
                "authenticationSpec": {"selector": {"matchLabels": {"app": "toystore"}}},
                "credentials": {"authorizationHeader": {"prefix": "APIKEY"}}
            },
            "reviewedBy": "owner",
            "reviewedAt": CONDITION_TIME
        }),
    )
    .await;

    let read = consumer.get("mine").await.expect("consumer reads the key");
    assert_eq!(read.spec.expires_at, Some(Time(expires)));
    let status = read.status.expect("status stored");
    assert_eq!(status.phase, Some(APIKeyPhase::Approved));
    assert_eq!(
        status
            .conditions
            .iter()
            .filter(|c| c.status == "True")
            .count(),
        1
    );
    assert_eq!(status.secret_ref.unwrap().key, API_KEY_DATA);
    assert_eq!(status.limits.unwrap().daily, Some(100));
    assert_eq!(
        status
            .auth_scheme
            .unwrap()
            .credentials
            .unwrap()
            .authorization_header
            .unwrap()
            .prefix
            .as_deref(),
        Some("APIKEY")
    );
    assert_eq!(status.reviewed_by.as_deref(), Some("owner"));
}

#[tokio::test]
async fn cel_rule_rejects_a_target_that_is_not_an_httproute() {
    let _serial = exclusive_cluster().await;
    let ns = TestNamespace::new("cel").await;
    let owner =
        Api::<APIProduct>::namespaced(control_plane().client(Persona::Owner).await, &ns.name);

    let mut service = fixtures::product("svc", "toystore");
    service.spec.target_ref.group = String::new();
    service.spec.target_ref.kind = "Service".into();
    let err = owner
        .create(&PostParams::default(), &service)
        .await
        .expect_err("a Service target is refused");
    let kube::Error::Api(status) = err else {
        panic!("expected an API error, got {err}")
    };
    assert_eq!(status.code, 422);
    assert!(
        status.message.contains(&format!(
            "targetRef must reference a {GATEWAY_GROUP} HTTPRoute, got kind Service in group \"\" (core)"
        )),
        "message names what was wrong: {}",
        status.message
    );

    let mut wrong_group = fixtures::product("grp", "toystore");
    wrong_group.spec.target_ref.group = "example.com".into();
    let err = owner
        .create(&PostParams::default(), &wrong_group)
        .await
        .expect_err("another group is refused");
    assert!(
        err.to_string()
            .contains("got kind HTTPRoute in group example.com"),
        "{err}"
    );

    // kubectl users see the same message.
    let manifest = format!(
        "apiVersion: {API_VERSION}\nkind: APIProduct\nmetadata: {{name: gw, namespace: {}}}\n\
         spec:\n  displayName: Gateway\n  targetRef: {{group: {GATEWAY_GROUP}, kind: Gateway, name: external}}\n",
        ns.name
    );
    let stderr = stderr_of_failure(&control_plane().kubectl(
        Persona::Owner,
        &["apply", "-f", "-"],
        Some(&manifest),
    ));
    assert!(stderr.contains("spec.targetRef: Invalid value"), "{stderr}");
    assert!(
        stderr.contains(&format!("got kind Gateway in group {GATEWAY_GROUP}")),
        "{stderr}"
    );
    assert!(
        owner.get_opt("gw").await.unwrap().is_none(),
        "nothing stored"
    );
}

#[tokio::test]
async fn kubectl_get_shows_the_printer_columns() {
    let _serial = exclusive_cluster().await;
    let ns = TestNamespace::new("columns").await;
    let cp = control_plane();
    let owner = Api::<APIProduct>::namespaced(cp.client(Persona::Owner).await, &ns.name);
    owner
        .create(
            &PostParams::default(),
            &fixtures::product("toys", "toystore"),
        )
        .await
        .unwrap();
    apply_status::<APIProduct>(
        &ns.name,
        "toys",
        json!({
            "discoveredPlans": [{"tier": "gold", "limits": {}}, {"tier": "silver", "limits": {}}],
            "planTiers": "gold,silver",
            "conditions": [{"type": product_condition::READY, "status": "True", "reason": "Discovered", "message": "",
                            "lastTransitionTime": CONDITION_TIME}]
        }),
    )
    .await;
    let mut key = fixtures::key("mine", "toys", "gold");
    key.spec.requested_by = Some(RequestedBy {
        user_id: "consumer".into(),
        email: None,
    });
    key.spec.expires_at = Some(Time("2030-01-01T00:00:00Z".parse().unwrap()));
    Api::<APIKey>::namespaced(cp.client(Persona::Consumer).await, &ns.name)
        .create(&PostParams::default(), &key)
        .await
        .unwrap();
    apply_status::<APIKey>(&ns.name, "mine", json!({"phase": "Pending"})).await;

    let products = stdout_of(&cp.kubectl(
        Persona::Consumer,
        &["get", "apiproducts", "-n", &ns.name],
        None,
    ));
    let mut lines = products.lines();
    let header: Vec<_> = lines
        .next()
        .unwrap()
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "DISPLAY NAME",
            "ROUTE",
            "MODE",
            "PUBLISHED",
            "PLANS",
            "READY",
            "AGE"
        ]
    );
    let row = lines.next().unwrap();
    for cell in [
        "toys",
        "The toys API",
        "toystore",
        "automatic",
        "Published",
        "gold,silver",
        "True",
    ] {
        assert!(row.contains(cell), "{cell:?} missing from {row:?}");
    }

    // `apik` is the short name.
    let keys = stdout_of(&cp.kubectl(Persona::Consumer, &["get", "apik", "-n", &ns.name], None));
    let mut lines = keys.lines();
    let header: Vec<_> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "PHASE", "PRODUCT", "PLAN", "USER", "EXPIRES", "AGE"]
    );
    let row: Vec<_> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        &row[..6],
        [
            "mine",
            "Pending",
            "toys",
            "gold",
            "consumer",
            "2030-01-01T00:00:00Z"
        ]
    );

    // Both kinds are in the `devportal` category.
    let all = stdout_of(&cp.kubectl(
        Persona::Owner,
        &["get", "devportal", "-n", &ns.name, "-o", "name"],
        None,
    ));
    assert!(all.contains(&format!("apiproduct.{GROUP}/toys")), "{all}");
    assert!(all.contains(&format!("apikey.{GROUP}/mine")), "{all}");
}

#[tokio::test]
async fn apiserver_applies_enum_defaults_and_rejects_unknown_values() {
    let _serial = exclusive_cluster().await;
    let ns = TestNamespace::new("defaults").await;
    let cp = control_plane();
    let manifest = format!(
        "apiVersion: {API_VERSION}\nkind: APIProduct\nmetadata: {{name: plain, namespace: {}}}\n\
         spec:\n  displayName: Plain\n  targetRef: {{group: {GATEWAY_GROUP}, kind: HTTPRoute, name: r}}\n",
        ns.name
    );
    stdout_of(&cp.kubectl(Persona::Owner, &["apply", "-f", "-"], Some(&manifest)));
    let stored = Api::<APIProduct>::namespaced(cp.client(Persona::Owner).await, &ns.name)
        .get("plain")
        .await
        .unwrap();
    assert_eq!(stored.spec.approval_mode, ApprovalMode::Manual);
    assert_eq!(stored.spec.publish_status, PublishStatus::Draft);
    let raw = stdout_of(&cp.kubectl(
        Persona::Owner,
        &[
            "get",
            "apiproduct",
            "plain",
            "-n",
            &ns.name,
            "-o",
            "jsonpath={.spec.approvalMode}/{.spec.publishStatus}",
        ],
        None,
    ));
    assert_eq!(
        raw, "manual/Draft",
        "defaults are stored by the apiserver, not filled in by the client"
    );

    let bad = manifest.replace("name: plain", "name: odd").replace(
        "  displayName: Plain\n",
        "  displayName: Odd\n  approvalMode: sometimes\n",
    );
    let stderr = stderr_of_failure(&cp.kubectl(Persona::Owner, &["apply", "-f", "-"], Some(&bad)));
    assert!(
        stderr.contains("spec.approvalMode: Unsupported value: \"sometimes\""),
        "{stderr}"
    );
}

#[tokio::test]
async fn unknown_fields_are_refused_not_silently_dropped() {
    let _serial = exclusive_cluster().await;
    let ns = TestNamespace::new("strict").await;
    let manifest = format!(
        "apiVersion: {API_VERSION}\nkind: APIKey\nmetadata: {{name: typo, namespace: {}}}\n\
         spec:\n  apiProductRef: {{name: toys}}\n  planTeir: gold\n  planTier: gold\n",
        ns.name
    );
    let stderr = stderr_of_failure(&control_plane().kubectl(
        Persona::Consumer,
        &["apply", "-f", "-"],
        Some(&manifest),
    ));
    assert!(
        stderr.contains("unknown field \"spec.planTeir\""),
        "{stderr}"
    );

    let missing = manifest.replace("  planTeir: gold\n  planTier: gold\n", "");
    let stderr = stderr_of_failure(&control_plane().kubectl(
        Persona::Consumer,
        &["apply", "-f", "-"],
        Some(&missing),
    ));
    assert!(stderr.contains("spec.planTier: Required value"), "{stderr}");
}
