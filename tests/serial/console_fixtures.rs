//! Issue 28: the OpenShift console plugin's e2e fixtures (tests/fixtures/console-plugin/, copied
//! from Kuadrant/kuadrant-console-plugin @ 0e33297e) applied as they are, in the order of its
//! `e2e/setup.sh`, as the admin, against devportal's webhook and controller. What devportal
//! refuses in them, and why, is what docs/front-ends.md lists; this test holds devportal to it.
//! Serial: the fixtures use fixed namespaces and an AuthPolicy whose selector accepts every
//! Secret Authorino watches, which would take part in the other tests' label checks.

use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use devportal::names::EXPOSED_ANNOTATION;
use devportal::resources::gateway::HTTPRoute;
use devportal::resources::{APIKey, APIKeyApproval, APIKeyRequest, APIProduct};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use support::replicas::Replicated;
use support::serial::exclusive_cluster;
use support::{Persona, control_plane, eventually, fixtures, repo_root};

const WAIT: Duration = Duration::from_secs(60);
const NS: &str = "kuadrant-test";

/// The documents of fixture `file`, each as YAML text.
fn documents(file: &str) -> Vec<String> {
    let path = repo_root().join("tests/fixtures/console-plugin").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    text.split("\n---")
        .map(str::to_string)
        .filter(|doc| {
            let parsed: Option<serde_yaml::Value> = serde_yaml::from_str(doc).ok();
            parsed.is_some_and(|v| v.get("kind").is_some())
        })
        .collect()
}

/// `Kind namespace/name` of a document.
fn id(doc: &str) -> String {
    let v: serde_yaml::Value = serde_yaml::from_str(doc).unwrap();
    let meta = &v["metadata"];
    format!(
        "{} {}/{}",
        v["kind"].as_str().unwrap(),
        meta["namespace"].as_str().unwrap_or(""),
        meta["name"].as_str().unwrap()
    )
}

/// Applies each document of `file` as the admin (`kubectl apply`, as setup.sh does), one at a
/// time; returns what became of each: `applied`, or kubectl's error.
fn apply(file: &str, only: impl Fn(&str) -> bool) -> BTreeMap<String, String> {
    let mut outcomes = BTreeMap::new();
    for doc in documents(file).into_iter().filter(|d| only(d)) {
        let out = control_plane().kubectl(Persona::Admin, &["apply", "-f", "-"], Some(&doc));
        let outcome = if out.status.success() {
            "applied".to_string()
        } else {
            String::from_utf8_lossy(&out.stderr).trim().to_string()
        };
        outcomes.insert(id(&doc), outcome);
    }
    outcomes
}

fn is_kind(kind: &'static str) -> impl Fn(&str) -> bool {
    move |doc: &str| id(doc).starts_with(&format!("{kind} "))
}

/// The refusal of `id` in `outcomes`, which must contain `needle`.
fn refused(outcomes: &BTreeMap<String, String>, id: &str, needle: &str) {
    let outcome = &outcomes[id];
    assert!(
        outcome.contains(needle),
        "{id}: {outcome:?} lacks {needle:?}"
    );
}

/// What the gateway and Kuadrant would write on a real cluster: the route accepted, the
/// AuthPolicy accepted and enforced.
async fn platform_status(admin: &Client) {
    fixtures::accept_route(admin, NS, "test-route").await;
    fixtures::enforce_auth_policy(admin, NS, "test-auth-policy").await;
}

#[tokio::test]
async fn the_console_plugins_e2e_fixtures_apply_as_they_are_but_for_what_devportal_refuses() {
    let _serial = exclusive_cluster().await;
    let _devportal = Replicated::start(1, &[], "devportal.kuadrant.io/console-fixtures-unguarded");
    let admin = control_plane().client(Persona::Admin).await;
    for role in ["api-owner", "api-consumer", "api-catalog-browser"] {
        apply(&format!("{role}-clusterrole.yaml"), |_| true);
    }
    let mut outcomes = apply("test-rbac.yaml", |_| true);
    outcomes.extend(apply("test-resources.yaml", |_| true));
    platform_status(&admin).await;
    outcomes.extend(apply("test-apikey-fixtures.yaml", |_| true));

    // Kinds the test cluster does not serve (no gateway implementation, no cert-manager).
    for id in [
        "Gateway kuadrant-test/test-gateway",
        "Gateway kuadrant-test-2/test-gateway-2",
        "ClusterIssuer /test-selfsigned",
    ] {
        refused(&outcomes, id, "no matches for kind");
    }
    // The fixture routes carry no `devportal.kuadrant.io/exposed`: devportal publishes only
    // routes a platform engineer opted in, so no product is admitted, and no key for one.
    let products: Vec<&String> = outcomes
        .keys()
        .filter(|id| id.starts_with("APIProduct "))
        .collect();
    assert_eq!(products.len(), 6, "{products:?}");
    for id in products {
        refused(
            &outcomes,
            id,
            "is not exposed to API owners; a platform engineer must annotate it",
        );
    }
    let keys: Vec<&String> = outcomes
        .keys()
        .filter(|id| id.starts_with("APIKey "))
        .collect();
    assert_eq!(keys.len(), 9, "{keys:?}");
    for id in keys {
        refused(
            &outcomes,
            id,
            "APIProduct \"test-approval-product\" not found in namespace",
        );
    }
    let applied = outcomes.values().filter(|o| *o == "applied").count();
    assert_eq!(
        applied,
        outcomes.len() - 3 - 6 - 9,
        "everything else applies: {outcomes:#?}"
    );

    // The platform engineer opts the routes in; the products, then the keys, are applied again.
    for (ns, route) in [(NS, "test-route"), ("kuadrant-test-2", "test-route-2")] {
        Api::<HTTPRoute>::namespaced(admin.clone(), ns)
            .patch(
                route,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {EXPOSED_ANNOTATION: "true"}}})),
            )
            .await
            .unwrap();
    }
    let mut products = apply("test-resources.yaml", is_kind("APIProduct"));
    products.extend(apply("test-apikey-fixtures.yaml", is_kind("APIProduct")));
    assert!(products.values().all(|o| o == "applied"), "{products:#?}");
    let products = Api::<APIProduct>::namespaced(admin.clone(), NS);
    eventually("test-approval-product's plans", WAIT, || async {
        let status = products.get("test-approval-product").await.ok()?.status?;
        (!status.discovered_plans.is_empty()).then_some(())
    })
    .await;
    let keys = apply("test-apikey-fixtures.yaml", is_kind("APIKey"));
    for user in ["alice", "alice2", "bob", "bob2", "carol", "ellen", "george"] {
        let id = format!("APIKey consumer-{user}/{user}-api-key");
        assert_eq!(keys[&id], "applied", "{id}");
    }
    // PlanPolicy test-plan-policy offers gold and silver; dave and frank ask for bronze.
    for user in ["dave", "frank"] {
        refused(
            &keys,
            &format!("APIKey consumer-{user}/{user}-api-key"),
            "spec.planTier \"bronze\" is not offered",
        );
    }
    let requests = Api::<APIKeyRequest>::namespaced(admin.clone(), NS);
    let george = eventually("the 7 APIKeyRequests", WAIT, || async {
        let listed = requests.list(&ListParams::default()).await.ok()?.items;
        (listed.len() == 7).then_some(())?;
        listed
            .into_iter()
            .find(|r| r.spec.api_key_ref.name == "george-api-key")
    })
    .await;

    // The deny-active-key suite approves george first: the fixture's 20-character key is below
    // --own-key-min-length (32), so devportal never enforces it.
    let approval: APIKeyApproval = serde_json::from_value(json!({
        "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKeyApproval",
        "metadata": {"name": format!("{}-approval", george.name_any())},
        "spec": support::reviews::console_spec(&george.name_any(), true, "admin")
    }))
    .unwrap();
    Api::<APIKeyApproval>::namespaced(admin.clone(), NS)
        .create(&PostParams::default(), &approval)
        .await
        .expect("the owner approves george's request");
    let keys = Api::<APIKey>::namespaced(admin.clone(), "consumer-george");
    let failed = eventually("george's key Failed", WAIT, || async {
        let key = keys.get("george-api-key").await.ok()?;
        let status = key.status?;
        let failed = status
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Failed" && c.status == "True")?;
        Some(failed)
    })
    .await;
    assert_eq!(failed.reason, "KeyValueRejected", "{}", failed.message);
    assert!(
        failed.message.contains("george-api-key"),
        "{}",
        failed.message
    );
    assert_eq!(
        support::reviews::enforced(&admin, "consumer-george", "george-api-key").await,
        0
    );
}
