//! The admission webhook through the real kube-apiserver: devportal runs as the controller
//! identity, registered with failurePolicy Fail, and the personas talk to the API server with
//! kubectl and kube-rs.

use crate::support;

use std::time::Duration;

use devportal::names::{API_VERSION, EXPOSED_ANNOTATION, GATEWAY_GROUP};
use devportal::resources::gateway::HTTPRoute;
use devportal::resources::kuadrant::Plan;
use devportal::resources::{APIKey, APIProduct, ApprovalMode, Limits, PublishStatus, RequestedBy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use support::access::qualified;
use support::{
    ControlPlane, Persona, TestNamespace, control_plane_with_devportal, fixtures,
    stderr_of_failure, stdout_of,
};

fn cp() -> &'static ControlPlane {
    control_plane_with_devportal()
}

/// A fresh namespace on the control plane with devportal (started first, so the fixture's
/// namespace helpers find it rather than starting a bare one).
async fn namespace(prefix: &str) -> TestNamespace {
    cp();
    TestNamespace::new(prefix).await
}

async fn client(persona: Persona) -> Client {
    cp().client(persona).await
}

/// An exposed, accepted route with a PlanPolicy offering `tiers` and an enforced API-key
/// AuthPolicy (created by the admin, their status written as a gateway and Kuadrant would), and a
/// manually approved product on it. Returns once devportal's controller has discovered the plans.
async fn publish(ns: &str, name: &str, status: PublishStatus, tiers: &[&str]) {
    let admin = client(Persona::Admin).await;
    let route = format!("{name}-route");
    let mut plans = fixtures::plan_policy(&format!("{name}-plans"), &route);
    plans.spec.plans = tiers
        .iter()
        .map(|t| Plan {
            tier: (*t).into(),
            predicate: None,
            limits: Limits {
                daily: Some(100),
                ..Limits::default()
            },
        })
        .collect();
    let auth = fixtures::auth_policy(&format!("{name}-auth"), &route);
    fixtures::platform(&admin, ns, plans, auth).await;
    let mut product = fixtures::product(name, &route);
    product.spec.publish_status = status;
    product.spec.approval_mode = ApprovalMode::Manual;
    let products = Api::<APIProduct>::namespaced(admin, ns);
    products
        .create(&PostParams::default(), &product)
        .await
        .expect("product on an exposed route is admitted");
    let expected = tiers.join(",");
    for _ in 0..300 {
        let tiers = products
            .get(name)
            .await
            .ok()
            .and_then(|p| p.status?.plan_tiers);
        if tiers.as_deref() == Some(expected.as_str()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("devportal's controller did not discover the plans of {ns}/{name}");
}

fn keys(client: Client, ns: &str) -> Api<APIKey> {
    Api::namespaced(client, ns)
}

/// A key for `product` in `product_ns`, requested in the key's namespace.
fn key_for(name: &str, product: &str, product_ns: &str, tier: &str) -> APIKey {
    let mut key = fixtures::key(name, product, tier);
    key.spec.api_product_ref.namespace = Some(product_ns.into());
    key
}

fn denial(err: kube::Error) -> (u16, String) {
    match err {
        kube::Error::Api(status) => (status.code, status.message),
        other => panic!("expected an API error, got {other}"),
    }
}

fn approval_patch(approved: bool) -> Patch<serde_json::Value> {
    Patch::Merge(json!({"spec": {"approval": {"approved": approved, "reason": "reviewed"}}}))
}

#[tokio::test]
async fn a_spoofed_requester_is_replaced_and_kubectl_warns() {
    let ns = namespace("spoof").await;
    publish(&ns.name, "toys", PublishStatus::Published, &["gold"]).await;
    let manifest = format!(
        "apiVersion: {API_VERSION}\nkind: APIKey\nmetadata: {{name: mine, namespace: {}}}\n\
         spec:\n  apiProductRef: {{name: toys}}\n  planTier: gold\n  requestedBy: {{userId: admin, email: boss@example.com}}\n",
        ns.name
    );
    // A server-side dry run shows the stamped object and stores nothing.
    let dry = stdout_of(&cp().kubectl(
        Persona::Consumer,
        &[
            "apply",
            "--dry-run=server",
            "-o",
            "jsonpath={.spec.requestedBy.userId}",
            "-f",
            "-",
        ],
        Some(&manifest),
    ));
    assert_eq!(dry, "consumer");
    let consumer = keys(client(Persona::Consumer).await, &ns.name);
    assert!(consumer.get_opt("mine").await.unwrap().is_none());

    let output = cp().kubectl(Persona::Consumer, &["apply", "-f", "-"], Some(&manifest));
    stdout_of(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "Warning: spec.requestedBy.userId \"admin\" was replaced with your username \"consumer\""
        ),
        "{stderr}"
    );
    let stored = consumer.get("mine").await.unwrap();
    assert_eq!(
        stored.spec.requested_by,
        Some(RequestedBy {
            user_id: "consumer".into(),
            email: Some("boss@example.com".into())
        })
    );
}

#[tokio::test]
async fn approving_takes_the_approve_verb_on_the_product() {
    let ns = namespace("approve").await;
    // Product B lives where the owner has no role at all.
    let elsewhere =
        TestNamespace::with_bindings("elsewhere", &[("devportal-api-consumer", &["consumer"])])
            .await;
    publish(&ns.name, "a", PublishStatus::Published, &["gold"]).await;
    publish(&elsewhere.name, "b", PublishStatus::Published, &["gold"]).await;
    let consumer = keys(client(Persona::Consumer).await, &ns.name);
    for (key, product_ns) in [("for-a", &ns.name), ("for-b", &elsewhere.name)] {
        let product = if key == "for-a" { "a" } else { "b" };
        consumer
            .create(
                &PostParams::default(),
                &key_for(key, product, product_ns, "gold"),
            )
            .await
            .expect("consumer requests a key");
    }

    let (code, message) = denial(
        consumer
            .patch("for-a", &PatchParams::default(), &approval_patch(true))
            .await
            .expect_err("a consumer cannot approve their own key"),
    );
    assert_eq!(code, 403);
    assert!(
        message.contains(&format!(
            "user \"consumer\" may not approve keys for APIProduct {ns}/a: needs verb \"approve\" on \
             {apiproducts} \"a\" in namespace \"{ns}\"",
            ns = ns.name,
            apiproducts = qualified::<APIProduct>(),
        )),
        "{message}"
    );

    let owner = keys(client(Persona::Owner).await, &ns.name);
    let approved = owner
        .patch("for-a", &PatchParams::default(), &approval_patch(true))
        .await
        .expect("the owner approves a key for their product");
    let approval = approved.spec.approval.expect("approval stored");
    assert_eq!(approval.reviewed_by.as_deref(), Some("owner"));
    assert!(approval.reviewed_at.is_some());

    let (code, message) = denial(
        owner
            .patch("for-b", &PatchParams::default(), &approval_patch(true))
            .await
            .expect_err("the owner of A cannot approve a key for B"),
    );
    assert_eq!(code, 403);
    assert!(
        message.contains("may not approve keys for APIProduct"),
        "{message}"
    );

    let admin = keys(client(Persona::Admin).await, &ns.name);
    let rejected = admin
        .patch("for-b", &PatchParams::default(), &approval_patch(false))
        .await
        .expect("the admin reviews anything");
    assert_eq!(
        rejected.spec.approval.unwrap().reviewed_by.as_deref(),
        Some("admin")
    );
}

#[tokio::test]
async fn bad_references_are_refused_with_actionable_messages() {
    let ns = namespace("refs").await;
    publish(
        &ns.name,
        "toys",
        PublishStatus::Published,
        &["gold", "silver"],
    )
    .await;
    publish(&ns.name, "secret", PublishStatus::Draft, &["gold"]).await;
    let consumer = keys(client(Persona::Consumer).await, &ns.name);

    let cases = [
        (
            key_for("k1", "nope", &ns.name, "gold"),
            format!("APIProduct \"nope\" not found in namespace \"{}\"", ns.name),
        ),
        (
            key_for("k2", "secret", &ns.name, "gold"),
            format!(
                "APIProduct {}/secret is a Draft: only its owners and API admins may request keys",
                ns.name
            ),
        ),
        (
            key_for("k3", "toys", &ns.name, "platinum"),
            "spec.planTier \"platinum\" is not offered by".to_string(),
        ),
    ];
    for (key, expected) in cases {
        let (_, message) = denial(
            consumer
                .create(&PostParams::default(), &key)
                .await
                .expect_err("refused"),
        );
        assert!(message.contains(&expected), "{message}");
    }
    let mut past = key_for("k4", "toys", &ns.name, "gold");
    past.spec.expires_at = Some(Time("2020-01-01T00:00:00Z".parse().unwrap()));
    let (code, message) = denial(
        consumer
            .create(&PostParams::default(), &past)
            .await
            .expect_err("expiry in the past is refused"),
    );
    assert_eq!(code, 422);
    assert!(message.contains("is not in the future"), "{message}");

    // kubectl users read the same message; an admin may request a key for a Draft product.
    let manifest = format!(
        "apiVersion: {API_VERSION}\nkind: APIKey\nmetadata: {{name: k5, namespace: {}}}\n\
         spec:\n  apiProductRef: {{name: toys}}\n  planTier: bronze\n",
        ns.name
    );
    let stderr =
        stderr_of_failure(&cp().kubectl(Persona::Consumer, &["apply", "-f", "-"], Some(&manifest)));
    assert!(stderr.contains("choose one of: gold, silver"), "{stderr}");
    // Schema errors still read as the API server's own, with the webhooks registered.
    let stderr = stderr_of_failure(&cp().kubectl(
        Persona::Consumer,
        &["apply", "-f", "-"],
        Some(&manifest.replace("  planTier: bronze\n", "")),
    ));
    assert!(stderr.contains("spec.planTier: Required value"), "{stderr}");
    keys(client(Persona::Admin).await, &ns.name)
        .create(
            &PostParams::default(),
            &key_for("admin-draft", "secret", &ns.name, "gold"),
        )
        .await
        .expect("admins may request keys for Draft products");
}

#[tokio::test]
async fn edits_follow_the_requester_and_the_review_state() {
    let ns = namespace("edits").await;
    publish(
        &ns.name,
        "toys",
        PublishStatus::Published,
        &["gold", "silver"],
    )
    .await;
    let consumer = keys(client(Persona::Consumer).await, &ns.name);
    consumer
        .create(
            &PostParams::default(),
            &key_for("mine", "toys", &ns.name, "gold"),
        )
        .await
        .unwrap();

    let retier = |tier: &str| Patch::Merge(json!({"spec": {"planTier": tier}}));
    consumer
        .patch("mine", &PatchParams::default(), &retier("silver"))
        .await
        .expect("the requester edits while Pending");
    let (code, message) = denial(
        keys(client(Persona::Consumer2).await, &ns.name)
            .patch("mine", &PatchParams::default(), &retier("gold"))
            .await
            .expect_err("another consumer may not edit"),
    );
    assert_eq!(code, 403);
    assert!(
        message.contains("only the requester \"consumer\""),
        "{message}"
    );
    let (_, message) = denial(
        consumer
            .patch(
                "mine",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"requestedBy": {"userId": "consumer2"}}})),
            )
            .await
            .expect_err("requestedBy is immutable"),
    );
    assert!(
        message.contains("spec.requestedBy is immutable"),
        "{message}"
    );

    keys(client(Persona::Owner).await, &ns.name)
        .patch("mine", &PatchParams::default(), &approval_patch(true))
        .await
        .expect("owner approves");
    let (_, message) = denial(
        consumer
            .patch("mine", &PatchParams::default(), &retier("gold"))
            .await
            .expect_err("the tier is settled once approved"),
    );
    assert!(
        message.contains("spec.planTier may change only while the key is Pending"),
        "{message}"
    );

    // Metadata-only changes pass for anyone RBAC lets through, and status is not intercepted.
    for persona in [Persona::Consumer2, Persona::Owner, Persona::Controller] {
        let label = Patch::Merge(json!({"metadata": {"labels": {persona.name(): "was-here"}}}));
        keys(client(persona).await, &ns.name)
            .patch("mine", &PatchParams::default(), &label)
            .await
            .unwrap_or_else(|e| panic!("{} changes labels: {e}", persona.name()));
    }
    keys(client(Persona::Controller).await, &ns.name)
        .patch_status(
            "mine",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Approved"}})),
        )
        .await
        .expect("status writes are not intercepted");
}

#[tokio::test]
async fn the_live_keys_guardrail_holds_per_user_and_product() {
    let ns = namespace("guard").await;
    publish(&ns.name, "toys", PublishStatus::Published, &["gold"]).await;
    let consumer = keys(client(Persona::Consumer).await, &ns.name);
    for i in 0..5 {
        consumer
            .create(
                &PostParams::default(),
                &key_for(&format!("k{i}"), "toys", &ns.name, "gold"),
            )
            .await
            .expect("up to the limit");
    }
    // The count comes from the watch cache; wait (bounded) until it has seen all five, using
    // dry-run requests, which the webhook answers without side effects.
    let sixth = key_for("k5", "toys", &ns.name, "gold");
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let mut message = String::new();
    for _ in 0..100 {
        match consumer.create(&dry_run, &sixth).await {
            Err(err) => {
                message = denial(err).1;
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert!(
        message.contains("5 keys already exist for \"consumer\" on APIProduct"),
        "{message}"
    );
    let (code, _) = denial(
        consumer
            .create(&PostParams::default(), &sixth)
            .await
            .expect_err("the sixth live key is refused"),
    );
    assert_eq!(code, 403);
    keys(client(Persona::Consumer2).await, &ns.name)
        .create(
            &PostParams::default(),
            &key_for("theirs", "toys", &ns.name, "gold"),
        )
        .await
        .expect("another user has their own allowance");

    consumer
        .delete("k0", &DeleteParams::default())
        .await
        .unwrap();
    let mut admitted = false;
    for _ in 0..100 {
        if consumer
            .create(&PostParams::default(), &sixth)
            .await
            .is_ok()
        {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(admitted, "a deleted key frees its slot");
}

#[tokio::test]
async fn products_need_an_existing_exposed_route() {
    let ns = namespace("routes").await;
    let admin = client(Persona::Admin).await;
    let mut hidden = fixtures::route("hidden");
    hidden.metadata.annotations = None;
    Api::<HTTPRoute>::namespaced(admin, &ns.name)
        .create(&PostParams::default(), &hidden)
        .await
        .unwrap();
    let owner = Api::<APIProduct>::namespaced(client(Persona::Owner).await, &ns.name);

    let (code, message) = denial(
        owner
            .create(&PostParams::default(), &fixtures::product("p1", "ghost"))
            .await
            .expect_err("a missing route is refused"),
    );
    assert_eq!(code, 422);
    assert!(
        message.contains(&format!(
            "HTTPRoute \"ghost\" not found in namespace \"{}\"",
            ns.name
        )),
        "{message}"
    );
    let manifest = format!(
        "apiVersion: {API_VERSION}\nkind: APIProduct\nmetadata: {{name: p2, namespace: {}}}\n\
         spec:\n  displayName: Hidden\n  targetRef: {{group: {GATEWAY_GROUP}, kind: HTTPRoute, name: hidden}}\n",
        ns.name
    );
    let stderr =
        stderr_of_failure(&cp().kubectl(Persona::Owner, &["apply", "-f", "-"], Some(&manifest)));
    assert!(
        stderr.contains("HTTPRoute \"hidden\"")
            && stderr.contains(&format!("must annotate it {EXPOSED_ANNOTATION}=\"true\"")),
        "{stderr}"
    );

    // Once exposed, the same product is admitted at once: a denial the cache would cause is
    // confirmed with a live read first.
    stdout_of(&cp().kubectl(
        Persona::Admin,
        &[
            "annotate",
            "httproute",
            "hidden",
            "-n",
            &ns.name,
            &format!("{EXPOSED_ANNOTATION}=true"),
        ],
        None,
    ));
    stdout_of(&cp().kubectl(Persona::Owner, &["apply", "-f", "-"], Some(&manifest)));
}

/// The webhook answers from its watch cache and reads live when the cache lacks the product or
/// shows it without the plans asked for. Each key here is requested the moment the API server
/// shows the plans the controller wrote a moment after the product was created, with nothing in
/// between: the webhook's watch has then not delivered that write yet, or only just, so an answer
/// from the cache alone would be a refusal (no plans yet, or no product at all). Three products in
/// a row; every key must be admitted. (Which path answered is not visible from outside; the
/// live-read rule itself is `check_product` in src/webhook/rules/apikey.rs.)
#[tokio::test]
async fn a_product_created_a_moment_ago_is_found() {
    let ns = namespace("fresh").await;
    let admin = client(Persona::Admin).await;
    let products = Api::<APIProduct>::namespaced(admin.clone(), &ns.name);
    let consumer = keys(client(Persona::Consumer).await, &ns.name);
    for n in 0..3 {
        let name = format!("fresh-{n}");
        let route = format!("{name}-route");
        let plans = fixtures::plan_policy(&format!("{name}-plans"), &route);
        let auth = fixtures::auth_policy(&format!("{name}-auth"), &route);
        fixtures::platform(&admin, &ns.name, plans, auth).await;
        let mut product = fixtures::product(&name, &route);
        product.spec.approval_mode = ApprovalMode::Manual;
        products
            .create(&PostParams::default(), &product)
            .await
            .expect("product on an exposed route is admitted");
        // Polled as fast as the API server answers: no time for the webhook's watch to catch up.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let planned = products
                .get(&name)
                .await
                .ok()
                .and_then(|p| p.status?.plan_tiers)
                .is_some_and(|tiers| !tiers.is_empty());
            if planned {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "devportal's controller did not discover the plans of {}/{name}",
                ns.name
            );
        }
        consumer
            .create(
                &PostParams::default(),
                &key_for(&format!("now-{n}"), &name, &ns.name, "gold"),
            )
            .await
            .expect("the key for a product whose plans appeared a moment ago is admitted");
    }
}
