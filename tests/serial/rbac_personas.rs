//! Persona RBAC on the real control plane: what the API consumer, API owner and API admin personas
//! of `manifests/rbac` may and may not do, asked with `kubectl auth can-i` and a
//! SubjectAccessReview (as the webhook asks it), and tried with real requests; and that the
//! ClusterRoles the control plane runs are the ones `manifests/rbac` ships.
//!
//! The control plane is the bare one: no webhook is registered, so every refusal here is RBAC's.

use crate::support;

use std::collections::BTreeSet;

use devportal::names::{API_VERSION, GROUP};
use devportal::resources::{APIKey, APIKeyApproval, APIKeyRequest, APIProduct};
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Resource};
use serde_json::{Value, json};
use support::access::{
    assert_forbidden, binding_in_effect, can_i, expect_can_i, may_approve, qualified,
};
use support::manifests::render;
use support::serial::exclusive_cluster;
use support::{Persona, TestNamespace, client, control_plane, fixtures, stdout_of};

#[tokio::test]
async fn the_cluster_runs_the_rbac_in_manifests() {
    let _serial = exclusive_cluster().await;
    // Everything below tests what hack/local-cluster.sh installed; make sure that is manifests/rbac.
    let rendered = render("manifests/rbac");
    let cluster_roles: Vec<&Value> = rendered
        .iter()
        .filter(|o| o["kind"] == "ClusterRole")
        .collect();
    let names: BTreeSet<&str> = cluster_roles
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect();
    for persona in [
        "devportal-api-viewer",
        "devportal-api-consumer",
        "devportal-api-owner",
        "devportal-api-admin",
        "devportal-key-reviewer",
        "devportal-platform-engineer",
        "devportal-controller",
    ] {
        assert!(names.contains(persona), "manifests/rbac ships {persona}");
    }
    for role in cluster_roles {
        let name = role["metadata"]["name"].as_str().unwrap();
        let live: Value = serde_json::from_str(&stdout_of(&control_plane().kubectl(
            Persona::Admin,
            &["get", "clusterrole", name, "-o", "json"],
            None,
        )))
        .unwrap();
        assert_eq!(
            live["rules"], role["rules"],
            "ClusterRole {name} on the cluster is the one in manifests/rbac"
        );
    }
}

#[tokio::test]
async fn a_consumer_requests_keys_in_their_namespace_and_only_browses_products() {
    let _serial = exclusive_cluster().await;
    let apiproducts = &qualified::<APIProduct>();
    let apikeys = &qualified::<APIKey>();
    let ns = TestNamespace::new("rbac-consumer").await;
    let elsewhere = TestNamespace::with_bindings("rbac-elsewhere", &[]).await;
    let (mine, other) = (ns.name.as_str(), elsewhere.name.as_str());

    expect_can_i(
        Persona::Consumer,
        &[
            (true, &["create", apikeys, "-n", mine]),
            (true, &["list", apikeys, "-n", mine]),
            (true, &["get", "secrets", "-n", mine]),
            (true, &["list", apiproducts, "--all-namespaces"]),
            (true, &["get", apiproducts, "-n", other]),
            (false, &["create", apikeys, "-n", other]),
            (false, &["create", apiproducts, "-n", mine]),
            (
                false,
                &["approve", &format!("{apiproducts}/toys"), "-n", mine],
            ),
            (false, &["create", "secrets", "-n", mine]),
            (false, &["get", "secrets", "-n", other]),
            (
                false,
                &["create", "subjectaccessreviews.authorization.k8s.io"],
            ),
        ],
    );

    // Real requests.
    let admin = client(Persona::Admin).await;
    Api::<APIProduct>::namespaced(admin, other)
        .create(
            &PostParams::default(),
            &fixtures::product("toys", "toystore"),
        )
        .await
        .expect("the admin publishes a product elsewhere");
    let consumer = client(Persona::Consumer).await;
    let browsed = Api::<APIProduct>::all(consumer.clone())
        .list(&ListParams::default())
        .await
        .expect("a consumer browses products in every namespace");
    assert!(
        browsed
            .iter()
            .any(|p| p.metadata.namespace.as_deref() == Some(other)),
        "the product in {other} is listed"
    );
    let keys = Api::<APIKey>::namespaced(consumer.clone(), mine);
    keys.create(
        &PostParams::default(),
        &fixtures::key("mine", "toys", "gold"),
    )
    .await
    .expect("a consumer requests a key in their own namespace");
    let listed = keys.list(&ListParams::default()).await.expect("and lists");
    assert_eq!(listed.items.len(), 1);
    assert_forbidden(
        "a consumer requesting a key in someone else's namespace",
        Api::<APIKey>::namespaced(consumer.clone(), other)
            .create(
                &PostParams::default(),
                &fixtures::key("theirs", "toys", "gold"),
            )
            .await,
    );
    assert_forbidden(
        "a consumer publishing a product",
        Api::<APIProduct>::namespaced(consumer.clone(), mine)
            .create(
                &PostParams::default(),
                &fixtures::product("mine", "toystore"),
            )
            .await,
    );
    assert_forbidden(
        "a consumer asking the API server who may approve",
        Api::<SubjectAccessReview>::all(consumer)
            .create(&PostParams::default(), &SubjectAccessReview::default())
            .await,
    );
    // `approve` is a custom verb: only a SubjectAccessReview (the webhook's) can exercise it.
    assert!(!may_approve("consumer", &["api-consumers"], mine, "toys").await);
    assert!(!may_approve("consumer", &["api-consumers"], other, "toys").await);
}

#[tokio::test]
async fn an_owner_publishes_and_approves_only_in_their_namespace() {
    let _serial = exclusive_cluster().await;
    let apiproducts = &qualified::<APIProduct>();
    let apikeys = &qualified::<APIKey>();
    let apikeyrequests = &qualified::<APIKeyRequest>();
    let apikeyapprovals = &qualified::<APIKeyApproval>();
    let ns = TestNamespace::new("rbac-owner").await;
    let elsewhere = TestNamespace::with_bindings(
        "rbac-consumers",
        &[("devportal-api-consumer", &["consumer"])],
    )
    .await;
    let (mine, other) = (ns.name.as_str(), elsewhere.name.as_str());

    expect_can_i(
        Persona::Owner,
        &[
            (true, &["create", apiproducts, "-n", mine]),
            (
                true,
                &["approve", &format!("{apiproducts}/toys"), "-n", mine],
            ),
            (true, &["list", apiproducts, "--all-namespaces"]),
            // The owner's inbox, in their namespace only (devportal-api-owner).
            (true, &["list", apikeyrequests, "-n", mine]),
            (true, &["watch", apikeyrequests, "-n", mine]),
            (true, &["create", apikeyapprovals, "-n", mine]),
            (false, &["update", apikeyrequests, "-n", mine]),
            (false, &["delete", apikeyrequests, "-n", mine]),
            // A review is changed by updating its approval (the console plugin's deny).
            (true, &["update", apikeyapprovals, "-n", mine]),
            (false, &["list", apikeyrequests, "-n", other]),
            (false, &["create", apikeyapprovals, "-n", other]),
            // Reviewing keys in consumers' namespaces (devportal-key-reviewer, cluster-wide locally
            // and optional: tests/it/owner_inbox.rs reviews without it): the webhook then lets the
            // owner change only approvals of keys for their products.
            (true, &["patch", apikeys, "-n", other]),
            (false, &["create", apikeys, "-n", other]),
            (false, &["create", apiproducts, "-n", other]),
            (
                false,
                &["approve", &format!("{apiproducts}/toys"), "-n", other],
            ),
            (false, &["get", "secrets", "-n", mine]),
        ],
    );

    let owner = client(Persona::Owner).await;
    Api::<APIProduct>::namespaced(owner.clone(), mine)
        .create(
            &PostParams::default(),
            &fixtures::product("toys", "toystore"),
        )
        .await
        .expect("an owner publishes in their namespace");
    assert_forbidden(
        "an owner publishing in another namespace",
        Api::<APIProduct>::namespaced(owner, other)
            .create(
                &PostParams::default(),
                &fixtures::product("toys", "toystore"),
            )
            .await,
    );
    assert!(may_approve("owner", &["api-owners"], mine, "toys").await);
    assert!(!may_approve("owner", &["api-owners"], other, "toys").await);
}

#[tokio::test]
async fn an_owner_scoped_by_resource_names_owns_only_the_named_product() {
    let _serial = exclusive_cluster().await;
    let apiproducts = &qualified::<APIProduct>();
    // How the persona comment in manifests/rbac/personas.yaml scopes ownership to one product.
    let ns = TestNamespace::with_bindings("rbac-named", &[]).await;
    let name = ns.name.as_str();
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "toys-owner", "namespace": name},
        "rules": [{
            "apiGroups": [GROUP], "resources": [APIProduct::plural(&())],
            "resourceNames": ["toys"], "verbs": ["get", "update", "patch", "approve"],
        }],
    });
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "toys-owner", "namespace": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "toys-owner"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "owner"}],
    });
    for object in [role, binding] {
        stdout_of(&control_plane().kubectl(
            Persona::Admin,
            &["apply", "-f", "-"],
            Some(&object.to_string()),
        ));
    }
    let toys = format!("{apiproducts}/toys");
    binding_in_effect(Persona::Owner, &["approve", &toys, "-n", name]).await;
    let admin = Api::<APIProduct>::namespaced(client(Persona::Admin).await, name);
    for product in ["toys", "games"] {
        admin
            .create(
                &PostParams::default(),
                &fixtures::product(product, "toystore"),
            )
            .await
            .expect("the admin creates both products");
    }

    expect_can_i(
        Persona::Owner,
        &[
            (
                true,
                &["approve", &format!("{apiproducts}/toys"), "-n", name],
            ),
            (true, &["patch", &format!("{apiproducts}/toys"), "-n", name]),
            (
                false,
                &["approve", &format!("{apiproducts}/games"), "-n", name],
            ),
            (
                false,
                &["patch", &format!("{apiproducts}/games"), "-n", name],
            ),
            (false, &["create", apiproducts, "-n", name]),
        ],
    );
    assert!(may_approve("owner", &["api-owners"], name, "toys").await);
    assert!(!may_approve("owner", &["api-owners"], name, "games").await);

    let owner = Api::<APIProduct>::namespaced(client(Persona::Owner).await, name);
    let describe = Patch::Merge(json!({"spec": {"description": "Toys, by their owner"}}));
    owner
        .patch("toys", &PatchParams::default(), &describe)
        .await
        .expect("the owner edits the product they own");
    assert_forbidden(
        "the owner editing a product they do not own",
        owner
            .patch("games", &PatchParams::default(), &describe)
            .await,
    );
}

#[tokio::test]
async fn an_api_admin_may_approve_and_manage_anything_but_no_secrets() {
    let _serial = exclusive_cluster().await;
    let apiproducts = &qualified::<APIProduct>();
    let apikeys = &qualified::<APIKey>();
    // The admin persona is system:masters, which RBAC never refuses; bind devportal-api-admin to a
    // user of its own and ask as that user (by impersonation) to test the ClusterRole itself.
    let ns = TestNamespace::with_bindings("rbac-admin", &[]).await;
    let user = format!("rbac-test-api-admin-{}", std::process::id());
    let binding = format!("rbac-test-api-admin-{}", std::process::id());
    stdout_of(&control_plane().kubectl(
        Persona::Admin,
        &[
            "create",
            "clusterrolebinding",
            &binding,
            "--clusterrole=devportal-api-admin",
            &format!("--user={user}"),
        ],
        None,
    ));
    let as_user = format!("--as={user}");
    binding_in_effect(Persona::Admin, &["approve", apiproducts, "-A", &as_user]).await;
    let results: Vec<(bool, Vec<String>)> = [
        (
            true,
            vec![
                "approve",
                &format!("{apiproducts}/anything"),
                "-n",
                &ns.name,
            ],
        ),
        (true, vec!["approve", apiproducts, "--all-namespaces"]),
        (true, vec!["delete", apiproducts, "-n", "default"]),
        (true, vec!["update", apikeys, "--all-namespaces"]),
        (false, vec!["get", "secrets", "-n", &ns.name]),
        (
            false,
            vec![
                "patch",
                &format!("{apikeys}/x"),
                "--subresource=status",
                "-n",
                &ns.name,
            ],
        ),
    ]
    .into_iter()
    .map(|(expected, mut args)| {
        args.push(&as_user);
        (expected, args.into_iter().map(String::from).collect())
    })
    .collect();
    for (expected, args) in &results {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(can_i(Persona::Admin, &args), *expected, "{args:?}");
    }
    assert!(may_approve(&user, &[], &ns.name, "anything").await);
    assert!(may_approve(&user, &[], "default", "anything").await);

    // A real request as that user: publishing a product in a namespace nobody bound them in.
    let product = serde_json::to_string(&fixtures::product("toys", "toystore")).unwrap();
    let created = control_plane().kubectl(
        Persona::Admin,
        &["create", "-n", &ns.name, "-f", "-", &as_user],
        Some(&product),
    );
    let refused_secret = control_plane().kubectl(
        Persona::Admin,
        &["get", "secrets", "-n", &ns.name, &as_user],
        None,
    );
    control_plane().kubectl(
        Persona::Admin,
        &["delete", "clusterrolebinding", &binding],
        None,
    );
    stdout_of(&created);
    assert!(
        String::from_utf8_lossy(&refused_secret.stderr).contains("forbidden"),
        "an API admin reads no Secrets: {}",
        String::from_utf8_lossy(&refused_secret.stderr)
    );
}

#[tokio::test]
async fn persona_rbac_separates_owners_consumers_and_the_controller() {
    let _serial = exclusive_cluster().await;
    let ns = TestNamespace::new("rbac").await;
    let cp = control_plane();
    let as_consumer = Api::<APIProduct>::namespaced(cp.client(Persona::Consumer).await, &ns.name);
    let err = as_consumer
        .create(&PostParams::default(), &fixtures::product("mine", "r"))
        .await
        .expect_err("consumers cannot publish products");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403),
        "{err}"
    );

    Api::<APIProduct>::namespaced(cp.client(Persona::Owner).await, &ns.name)
        .create(&PostParams::default(), &fixtures::product("toys", "r"))
        .await
        .expect("owners publish products in their namespace");
    let err = as_consumer
        .patch_status(
            "toys",
            &PatchParams::apply("sneaky"),
            &Patch::Apply(json!({
                "apiVersion": API_VERSION, "kind": "APIProduct",
                "status": {"discoveredPlans": [{"tier": "free", "limits": {}}]}
            })),
        )
        .await
        .expect_err("only the controller writes status");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403),
        "{err}"
    );

    let listed = stdout_of(&cp.kubectl(
        Persona::Consumer2,
        &["get", "apiproducts", "-A", "-o", "name"],
        None,
    ));
    assert!(
        listed.contains(&format!("apiproduct.{GROUP}/toys")),
        "consumers browse every namespace: {listed}"
    );
}
