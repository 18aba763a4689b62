//! The RBAC and install manifests against the real control plane: what each persona and devportal's
//! own identity may and may not do (asked with `kubectl auth can-i` and a SubjectAccessReview, and
//! tried with real requests), that `manifests/` renders into what a cluster needs, and that the API
//! server accepts it (server-side dry run, Pod Security "restricted").
//!
//! The control plane is the bare one: no webhook is registered, so every refusal here is RBAC's.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use devportal::resources::{APIKey, APIProduct};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde::Deserialize;
use serde_json::{Value, json};
use support::{Persona, TestNamespace, control_plane, eventually, fixtures, stdout_of};

const SYSTEM_NAMESPACE: &str = "devportal-system";
const APIPRODUCTS: &str = "apiproducts.devportal.kuadrant.io";
const APIKEYS: &str = "apikeys.devportal.kuadrant.io";

/// `kubectl auth can-i <args>` as `persona`: the API server's own answer.
fn can_i(persona: Persona, args: &[&str]) -> bool {
    let mut full = vec!["auth", "can-i"];
    full.extend_from_slice(args);
    let out = control_plane().kubectl(persona, &full, None);
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match answer.split_whitespace().next() {
        Some("yes") => true,
        Some("no") => false,
        _ => panic!(
            "kubectl auth can-i {args:?} as {} gave no answer: {answer:?} {}",
            persona.name(),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Asserts what `kubectl auth can-i` answers for each `(expected, args)`.
fn expect_can_i(persona: Persona, cases: &[(bool, &[&str])]) {
    for (expected, args) in cases {
        assert_eq!(
            can_i(persona, args),
            *expected,
            "{} {} `kubectl auth can-i {}`",
            persona.name(),
            if *expected {
                "should pass"
            } else {
                "should fail"
            },
            args.join(" ")
        );
    }
}

/// Asks what the webhook asks (as devportal's identity, exactly as it does): may this user
/// `approve` the product?
async fn may_approve(user: &str, groups: &[&str], namespace: &str, product: &str) -> bool {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.into()),
            groups: Some(groups.iter().map(|g| g.to_string()).collect()),
            resource_attributes: Some(ResourceAttributes {
                group: Some("devportal.kuadrant.io".into()),
                resource: Some("apiproducts".into()),
                verb: Some("approve".into()),
                namespace: Some(namespace.into()),
                name: Some(product.into()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    let controller = control_plane().client(Persona::Controller).await;
    Api::<SubjectAccessReview>::all(controller)
        .create(&PostParams::default(), &review)
        .await
        .expect("devportal's identity creates SubjectAccessReviews")
        .status
        .expect("a SubjectAccessReview has a status")
        .allowed
}

/// Asserts that `result` is the API server's 403.
fn assert_forbidden<T: std::fmt::Debug>(what: &str, result: Result<T, kube::Error>) {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

/// Waits (bounded) until the API server's RBAC authorizer, which reads bindings from a watch
/// cache, has seen a binding just made: until `kubectl auth can-i <args>` says yes.
async fn binding_in_effect(persona: Persona, args: &[&str]) {
    eventually(
        &format!("`kubectl auth can-i {}` to pass", args.join(" ")),
        std::time::Duration::from_secs(10),
        || async { can_i(persona, args).then_some(()) },
    )
    .await;
}

async fn client(persona: Persona) -> Client {
    control_plane().client(persona).await
}

#[tokio::test]
async fn the_cluster_runs_the_rbac_in_manifests() {
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
    let ns = TestNamespace::new("rbac-consumer").await;
    let elsewhere = TestNamespace::with_bindings("rbac-elsewhere", &[]).await;
    let (mine, other) = (ns.name.as_str(), elsewhere.name.as_str());

    expect_can_i(
        Persona::Consumer,
        &[
            (true, &["create", APIKEYS, "-n", mine]),
            (true, &["list", APIKEYS, "-n", mine]),
            (true, &["get", "secrets", "-n", mine]),
            (true, &["list", APIPRODUCTS, "--all-namespaces"]),
            (true, &["get", APIPRODUCTS, "-n", other]),
            (false, &["create", APIKEYS, "-n", other]),
            (false, &["create", APIPRODUCTS, "-n", mine]),
            (
                false,
                &["approve", &format!("{APIPRODUCTS}/toys"), "-n", mine],
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
            (true, &["create", APIPRODUCTS, "-n", mine]),
            (
                true,
                &["approve", &format!("{APIPRODUCTS}/toys"), "-n", mine],
            ),
            (true, &["list", APIPRODUCTS, "--all-namespaces"]),
            // Reviewing keys in consumers' namespaces (devportal-key-reviewer, cluster-wide locally):
            // the webhook then lets the owner change only approvals of keys for their products.
            (true, &["patch", APIKEYS, "-n", other]),
            (false, &["create", APIKEYS, "-n", other]),
            (false, &["create", APIPRODUCTS, "-n", other]),
            (
                false,
                &["approve", &format!("{APIPRODUCTS}/toys"), "-n", other],
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
    // How the persona comment in manifests/rbac/personas.yaml scopes ownership to one product.
    let ns = TestNamespace::with_bindings("rbac-named", &[]).await;
    let name = ns.name.as_str();
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "toys-owner", "namespace": name},
        "rules": [{
            "apiGroups": ["devportal.kuadrant.io"], "resources": ["apiproducts"],
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
    let toys = format!("{APIPRODUCTS}/toys");
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
                &["approve", &format!("{APIPRODUCTS}/toys"), "-n", name],
            ),
            (true, &["patch", &format!("{APIPRODUCTS}/toys"), "-n", name]),
            (
                false,
                &["approve", &format!("{APIPRODUCTS}/games"), "-n", name],
            ),
            (
                false,
                &["patch", &format!("{APIPRODUCTS}/games"), "-n", name],
            ),
            (false, &["create", APIPRODUCTS, "-n", name]),
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
    binding_in_effect(Persona::Admin, &["approve", APIPRODUCTS, "-A", &as_user]).await;
    let results: Vec<(bool, Vec<String>)> = [
        (
            true,
            vec![
                "approve",
                &format!("{APIPRODUCTS}/anything"),
                "-n",
                &ns.name,
            ],
        ),
        (true, vec!["approve", APIPRODUCTS, "--all-namespaces"]),
        (true, vec!["delete", APIPRODUCTS, "-n", "default"]),
        (true, vec!["update", APIKEYS, "--all-namespaces"]),
        (false, vec!["get", "secrets", "-n", &ns.name]),
        (
            false,
            vec![
                "patch",
                "apikeys.devportal.kuadrant.io/x",
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
async fn devportal_may_do_what_its_code_does_and_no_more() {
    let ns = TestNamespace::new("rbac-devportal").await;
    let name = ns.name.as_str();
    let lease = format!("rbac-test-{}", std::process::id());

    expect_can_i(
        Persona::Controller,
        &[
            (true, &["create", "secrets", "-n", name]),
            (true, &["update", "secrets", "-n", name]),
            (false, &["patch", "secrets", "-n", name]),
            (true, &["delete", "secrets", "-n", name]),
            (true, &["watch", "secrets", "--all-namespaces"]),
            (
                true,
                &["patch", APIKEYS, "--subresource=status", "-n", name],
            ),
            (
                true,
                &["patch", APIPRODUCTS, "--subresource=status", "-n", name],
            ),
            (true, &["patch", APIKEYS, "-n", name]),
            (
                true,
                &["update", APIKEYS, "--subresource=finalizers", "-n", name],
            ),
            (
                true,
                &[
                    "watch",
                    "httproutes.gateway.networking.k8s.io",
                    "--all-namespaces",
                ],
            ),
            (
                true,
                &["watch", "authpolicies.kuadrant.io", "--all-namespaces"],
            ),
            (
                true,
                &[
                    "watch",
                    "planpolicies.extensions.kuadrant.io",
                    "--all-namespaces",
                ],
            ),
            (true, &["create", "events.events.k8s.io", "-n", name]),
            (
                true,
                &["create", "subjectaccessreviews.authorization.k8s.io"],
            ),
            (
                true,
                &[
                    "update",
                    "leases.coordination.k8s.io",
                    "-n",
                    SYSTEM_NAMESPACE,
                ],
            ),
            (
                true,
                &[
                    "create",
                    "leases.coordination.k8s.io",
                    "-n",
                    SYSTEM_NAMESPACE,
                ],
            ),
            (true, &["get", "mutatingwebhookconfigurations/devportal"]),
            (
                true,
                &["patch", "validatingwebhookconfigurations/devportal"],
            ),
            // and no more:
            (false, &["update", "leases.coordination.k8s.io", "-n", name]),
            (
                false,
                &["create", "leases.coordination.k8s.io", "-n", "kube-system"],
            ),
            (
                false,
                &[
                    "delete",
                    "leases.coordination.k8s.io",
                    "-n",
                    SYSTEM_NAMESPACE,
                ],
            ),
            (
                false,
                &["patch", "mutatingwebhookconfigurations/someone-else"],
            ),
            (false, &["create", "validatingwebhookconfigurations"]),
            (false, &["create", APIKEYS, "-n", name]),
            (false, &["delete", APIKEYS, "-n", name]),
            (false, &["update", APIPRODUCTS, "-n", name]),
            (
                false,
                &["approve", &format!("{APIPRODUCTS}/toys"), "-n", name],
            ),
            (
                false,
                &["create", "httproutes.gateway.networking.k8s.io", "-n", name],
            ),
            (false, &["create", "pods", "-n", name]),
            (
                false,
                &[
                    "create",
                    "rolebindings.rbac.authorization.k8s.io",
                    "-n",
                    name,
                ],
            ),
        ],
    );

    let controller = client(Persona::Controller).await;
    let admin = client(Persona::Admin).await;

    // API-key Secrets: created (never applied over an existing one), deleted on revocation.
    let secrets = Api::<Secret>::namespaced(controller.clone(), name);
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "apikey-test", "labels": {"app": "toystore"}},
        "stringData": {"api_key": "not-a-real-key"},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("devportal creates a Secret");
    secrets
        .delete("apikey-test", &DeleteParams::default())
        .await
        .expect("devportal deletes a Secret");

    // An APIKey's finalizer and status.
    Api::<APIProduct>::namespaced(admin.clone(), name)
        .create(
            &PostParams::default(),
            &fixtures::product("toys", "toystore"),
        )
        .await
        .expect("product");
    Api::<APIKey>::namespaced(client(Persona::Consumer).await, name)
        .create(
            &PostParams::default(),
            &fixtures::key("mine", "toys", "gold"),
        )
        .await
        .expect("key");
    let keys = Api::<APIKey>::namespaced(controller.clone(), name);
    keys.patch(
        "mine",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["devportal.kuadrant.io/test"]}})),
    )
    .await
    .expect("devportal adds its finalizer");
    keys.patch_status(
        "mine",
        &PatchParams::apply("devportal").force(),
        &Patch::Apply(json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey",
            "status": {"phase": "Pending"},
        })),
    )
    .await
    .expect("devportal writes APIKey status");
    keys.patch(
        "mine",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("devportal removes its finalizer");
    assert_forbidden(
        "devportal deleting an APIKey",
        keys.delete("mine", &DeleteParams::default()).await,
    );
    assert_forbidden(
        "devportal editing a product's spec",
        Api::<APIProduct>::namespaced(controller.clone(), name)
            .patch(
                "toys",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"description": "changed"}})),
            )
            .await,
    );

    // An Event, as kube-runtime's Recorder writes it.
    let event = Event {
        metadata: ObjectMeta {
            name: Some("rbac-test".into()),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(Timestamp::now())),
        action: Some("Reconcile".into()),
        reason: Some("Test".into()),
        note: Some("RBAC test".into()),
        type_: Some("Normal".into()),
        reporting_controller: Some("devportal".into()),
        reporting_instance: Some("rbac-test".into()),
        regarding: Some(ObjectReference {
            api_version: Some("devportal.kuadrant.io/v1alpha1".into()),
            kind: Some("APIKey".into()),
            name: Some("mine".into()),
            namespace: Some(name.into()),
            ..ObjectReference::default()
        }),
        ..Event::default()
    };
    Api::<Event>::namespaced(controller.clone(), name)
        .create(&PostParams::default(), &event)
        .await
        .expect("devportal records an Event");

    // The leader-election Lease: in devportal-system only.
    let new_lease = |holder: &str| Lease {
        metadata: ObjectMeta {
            name: Some(lease.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            ..LeaseSpec::default()
        }),
    };
    let own_leases = Api::<Lease>::namespaced(controller.clone(), SYSTEM_NAMESPACE);
    let mut held = own_leases
        .create(&PostParams::default(), &new_lease("replica-a"))
        .await
        .expect("devportal creates its Lease");
    held.spec.as_mut().unwrap().holder_identity = Some("replica-b".into());
    let replaced = own_leases
        .replace(&lease, &PostParams::default(), &held)
        .await;
    Api::<Lease>::namespaced(admin.clone(), SYSTEM_NAMESPACE)
        .delete(&lease, &DeleteParams::default())
        .await
        .expect("the admin cleans up");
    replaced.expect("devportal takes its Lease over");
    let foreign = Api::<Lease>::namespaced(admin.clone(), name)
        .create(&PostParams::default(), &new_lease("someone"))
        .await
        .expect("the admin creates a Lease elsewhere");
    let foreign_leases = Api::<Lease>::namespaced(controller.clone(), name);
    assert_forbidden(
        "devportal updating a Lease outside its namespace",
        foreign_leases
            .replace(&lease, &PostParams::default(), &foreign)
            .await,
    );
    assert_forbidden(
        "devportal creating a Lease outside its namespace",
        foreign_leases
            .create(&PostParams::default(), &new_lease("devportal"))
            .await,
    );

    // The webhook configurations named `devportal` (self-managed caBundle), and no other. Created
    // empty here when absent, so they change nothing; patched by server-side dry run, so an
    // installed devportal's (on an external cluster) are left as they are.
    let mut created_here = Vec::new();
    for kind in [
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
    ] {
        let exists = control_plane()
            .kubectl(Persona::Admin, &["get", kind, "devportal"], None)
            .status
            .success();
        if !exists {
            let kind_name = if kind.starts_with("mutating") {
                "MutatingWebhookConfiguration"
            } else {
                "ValidatingWebhookConfiguration"
            };
            let empty = json!({
                "apiVersion": "admissionregistration.k8s.io/v1", "kind": kind_name,
                "metadata": {"name": "devportal"},
            });
            stdout_of(&control_plane().kubectl(
                Persona::Admin,
                &["create", "-f", "-"],
                Some(&empty.to_string()),
            ));
            created_here.push(kind);
        }
        let patch = r#"{"metadata":{"annotations":{"devportal.kuadrant.io/rbac-test":"yes"}}}"#;
        let ours = control_plane().kubectl(
            Persona::Controller,
            &[
                "patch",
                kind,
                "devportal",
                "--type=merge",
                "-p",
                patch,
                "--dry-run=server",
            ],
            None,
        );
        let theirs =
            control_plane().kubectl(Persona::Controller, &["get", kind, "-o", "name"], None);
        stdout_of(&ours);
        assert!(
            String::from_utf8_lossy(&theirs.stderr).contains("forbidden"),
            "devportal may not list every {kind}"
        );
    }
    for kind in created_here {
        stdout_of(&control_plane().kubectl(Persona::Admin, &["delete", kind, "devportal"], None));
    }
}

/// `kubectl kustomize <dir>` (relative to the repository), as parsed objects.
fn render(dir: &str) -> Vec<Value> {
    let path = support::repo_root().join(dir);
    let yaml = stdout_of(&control_plane().kubectl(
        Persona::Admin,
        &["kustomize", path.to_str().unwrap()],
        None,
    ));
    serde_yaml::Deserializer::from_str(&yaml)
        .map(|document| Value::deserialize(document).expect("kustomize renders YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

/// The kinds the API server says are cluster-scoped.
fn cluster_scoped_kinds() -> BTreeSet<String> {
    let out = stdout_of(&control_plane().kubectl(
        Persona::Admin,
        &["api-resources", "--namespaced=false", "--no-headers"],
        None,
    ));
    out.lines()
        .filter_map(|line| line.split_whitespace().last().map(String::from))
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("the rendering has {kind} {name}"))
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_manifests_render_a_hardened_highly_available_install() {
    let objects = render("manifests");
    let cluster_scoped = cluster_scoped_kinds();
    assert!(cluster_scoped.contains("ClusterRole") && !cluster_scoped.contains("Deployment"));
    for object in &objects {
        let kind = object["kind"].as_str().unwrap();
        let name = object["metadata"]["name"].as_str().unwrap();
        if cluster_scoped.contains(kind) {
            assert!(object["metadata"]["namespace"].is_null(), "{kind} {name}");
        } else {
            assert_eq!(
                object["metadata"]["namespace"], SYSTEM_NAMESPACE,
                "{kind} {name} lands in {SYSTEM_NAMESPACE}"
            );
        }
    }
    let kinds: BTreeMap<&str, usize> = objects.iter().fold(BTreeMap::new(), |mut m, o| {
        *m.entry(o["kind"].as_str().unwrap()).or_default() += 1;
        m
    });
    for kind in [
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        assert_eq!(kinds.get(kind), Some(&1), "exactly one {kind}: {kinds:?}");
    }
    assert_eq!(kinds.get("CustomResourceDefinition"), Some(&2));
    assert_eq!(
        kinds.get("ClusterRoleBinding"),
        Some(&2),
        "devportal-controller and devportal-apikey-secrets (the Secret writes, to narrow per namespace)"
    );
    assert!(
        !kinds.contains_key("ServiceMonitor") && !kinds.contains_key("Certificate"),
        "the base needs neither Prometheus Operator nor cert-manager"
    );
    find(&objects, "Namespace", SYSTEM_NAMESPACE);
    find(&objects, "ServiceAccount", "devportal");

    // The Deployment: two replicas, probes on the admin port, hardened, spread, TLS from the Secret.
    let deployment = find(&objects, "Deployment", "devportal");
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 2);
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
    let pod = &spec["template"]["spec"];
    let labels = &spec["template"]["metadata"]["labels"];
    assert_eq!(
        &spec["selector"]["matchLabels"]["app.kubernetes.io/name"],
        &labels["app.kubernetes.io/name"]
    );
    assert_eq!(pod["serviceAccountName"], "devportal");
    assert!(pod["terminationGracePeriodSeconds"].as_i64().unwrap() >= 10);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let spread: Vec<&str> = pod["topologySpreadConstraints"]
        .as_array()
        .expect("topology spread")
        .iter()
        .map(|c| c["topologyKey"].as_str().unwrap())
        .collect();
    assert!(spread.contains(&"kubernetes.io/hostname"), "{spread:?}");
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    assert_eq!(container["image"], "ghcr.io/kuadrant/devportal:0.1.0");
    let args = strings(&container["args"]);
    assert_eq!(args[0], "run");
    for flag in [
        "--tls-cert-file=/etc/devportal/tls/tls.crt",
        "--tls-key-file=/etc/devportal/tls/tls.key",
        "--self-managed-certs",
    ] {
        assert!(args.contains(&flag), "{flag} in {args:?}");
    }
    let ports: BTreeMap<&str, i64> = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["containerPort"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ports, BTreeMap::from([("https", 8443), ("http", 8080)]));
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], "http");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/livez");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], "http");
    let env: BTreeMap<&str, &Value> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap(),
                &e["valueFrom"]["fieldRef"]["fieldPath"],
            )
        })
        .collect();
    assert_eq!(env["POD_NAME"], "metadata.name");
    assert_eq!(env["POD_NAMESPACE"], "metadata.namespace");
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(strings(&security["capabilities"]["drop"]), ["ALL"]);
    for bound in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                container["resources"][bound][resource].is_string(),
                "resources.{bound}.{resource} is set"
            );
        }
    }
    assert_eq!(
        container["volumeMounts"][0]["mountPath"],
        "/etc/devportal/tls"
    );
    let volume = &pod["volumes"][0];
    assert_eq!(volume["name"], container["volumeMounts"][0]["name"]);
    assert_eq!(
        volume["emptyDir"]["medium"], "Memory",
        "self-managed mode writes the serving pair to memory, never to the node's disk"
    );

    // The Service and PDB select the pods; the Service exposes the webhook on 443.
    let service = find(&objects, "Service", "devportal");
    for selector in [
        &service["spec"]["selector"],
        &find(&objects, "PodDisruptionBudget", "devportal")["spec"]["selector"]["matchLabels"],
    ] {
        for (key, value) in selector.as_object().expect("a selector") {
            assert_eq!(&labels[key], value, "the pods carry {key}");
        }
    }
    assert_eq!(
        find(&objects, "PodDisruptionBudget", "devportal")["spec"]["minAvailable"],
        1
    );
    let service_ports: BTreeMap<&str, (&Value, &Value)> = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), (&p["port"], &p["targetPort"])))
        .collect();
    assert_eq!(service_ports["https"], (&json!(443), &json!("https")));
    assert_eq!(service_ports["http"], (&json!(8080), &json!("http")));

    // The in-cluster webhooks are webhooks/*.yaml with a service reference instead of a URL.
    for (kind, file) in [
        ("MutatingWebhookConfiguration", "webhooks/mutating.yaml"),
        ("ValidatingWebhookConfiguration", "webhooks/validating.yaml"),
    ] {
        let template: Value = serde_yaml::from_str(
            &std::fs::read_to_string(support::repo_root().join(file)).unwrap(),
        )
        .unwrap();
        let rendered = find(&objects, kind, "devportal");
        assert!(
            rendered["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].is_null(),
            "only the cert-manager component hands caBundle to cert-manager"
        );
        let (want, got) = (
            template["webhooks"].as_array().unwrap(),
            rendered["webhooks"].as_array().unwrap(),
        );
        assert_eq!(want.len(), got.len(), "{kind}");
        for (want, got) in want.iter().zip(got) {
            let mut want = want.clone();
            let mut got = got.clone();
            let url = want["clientConfig"]["url"].as_str().unwrap().to_string();
            let service = got["clientConfig"]["service"].clone();
            assert_eq!(
                service,
                json!({
                    "namespace": SYSTEM_NAMESPACE, "name": "devportal", "port": 443,
                    "path": url.trim_start_matches("${WEBHOOK_URL}"),
                }),
                "{kind} {}",
                got["name"]
            );
            assert!(got["timeoutSeconds"].as_i64().unwrap() <= 5);
            want.as_object_mut().unwrap().remove("clientConfig");
            got.as_object_mut().unwrap().remove("clientConfig");
            assert_eq!(got, want, "{kind}: same rules and policies as {file}");
        }
    }
}

#[tokio::test]
async fn the_optional_components_add_cert_manager_and_monitoring() {
    // An overlay as an operator would write it (kustomize wants relative paths).
    let dir = support::repo_root()
        .join("target/tmp")
        .join(format!("rbac-overlay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("kustomization.yaml"),
        "resources: [../../../manifests]\n\
         components: [../../../manifests/cert-manager, ../../../manifests/monitoring]\n\
         images:\n\
         - {name: ghcr.io/kuadrant/devportal, newName: registry.example.com/devportal, newTag: v9}\n",
    )
    .unwrap();
    let relative = dir.strip_prefix(support::repo_root()).unwrap();
    let objects = render(relative.to_str().unwrap());
    std::fs::remove_dir_all(&dir).unwrap();

    let deployment = find(&objects, "Deployment", "devportal");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "registry.example.com/devportal:v9");
    let args = strings(&container["args"]);
    assert!(!args.contains(&"--self-managed-certs"), "{args:?}");
    assert!(
        args.contains(&"--tls-cert-file=/etc/devportal/tls/tls.crt"),
        "{args:?}"
    );
    let volume = &deployment["spec"]["template"]["spec"]["volumes"][0];
    assert_eq!(volume["secret"]["secretName"], "devportal-webhook-tls");
    assert_eq!(volume["secret"]["optional"], false);

    let certificate = find(&objects, "Certificate", "devportal-webhook");
    assert_eq!(certificate["metadata"]["namespace"], SYSTEM_NAMESPACE);
    assert_eq!(certificate["spec"]["secretName"], "devportal-webhook-tls");
    assert!(
        strings(&certificate["spec"]["dnsNames"]).contains(&"devportal.devportal-system.svc"),
        "the certificate names the Service the API server dials"
    );
    let issuer = certificate["spec"]["issuerRef"]["name"].as_str().unwrap();
    find(&objects, "Issuer", issuer);
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        assert_eq!(
            find(&objects, kind, "devportal")["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            "devportal-system/devportal-webhook"
        );
    }

    let monitor = find(&objects, "ServiceMonitor", "devportal");
    assert_eq!(monitor["metadata"]["namespace"], SYSTEM_NAMESPACE);
    let service = find(&objects, "Service", "devportal");
    let port = &monitor["spec"]["endpoints"][0]["port"];
    assert!(
        service["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| &p["name"] == port),
        "the ServiceMonitor scrapes a port the Service has"
    );
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    let rules = find(&objects, "PrometheusRule", "devportal");
    assert!(
        rules["spec"]["groups"]
            .as_array()
            .is_some_and(|g| !g.is_empty())
    );
}

#[tokio::test]
async fn the_api_server_accepts_the_manifests() {
    // The base only: the components need CRDs (cert-manager, Prometheus Operator) this control
    // plane does not have. Strict validation refuses unknown or misspelled fields.
    let base = support::repo_root().join("manifests");
    let out = stdout_of(&control_plane().kubectl(
        Persona::Admin,
        &[
            "apply",
            "--dry-run=server",
            "--validate=strict",
            "-k",
            base.to_str().unwrap(),
        ],
        None,
    ));
    for object in [
        "deployment.apps/devportal",
        "service/devportal",
        "poddisruptionbudget.policy/devportal",
        "networkpolicy.networking.k8s.io/devportal",
        "mutatingwebhookconfiguration.admissionregistration.k8s.io/devportal",
        "validatingwebhookconfiguration.admissionregistration.k8s.io/devportal",
        "clusterrole.rbac.authorization.k8s.io/devportal-controller",
    ] {
        assert!(out.contains(object), "{object} accepted:\n{out}");
    }

    // The pod devportal runs meets the "restricted" Pod Security Standard its namespace enforces:
    // create it, by dry run, in a namespace enforcing the same.
    let ns = TestNamespace::with_bindings("rbac-psa", &[]).await;
    stdout_of(&control_plane().kubectl(
        Persona::Admin,
        &[
            "label",
            "namespace",
            &ns.name,
            "pod-security.kubernetes.io/enforce=restricted",
        ],
        None,
    ));
    let rendered = render("manifests");
    assert_eq!(
        find(&rendered, "Namespace", SYSTEM_NAMESPACE)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    let template = &find(&rendered, "Deployment", "devportal")["spec"]["template"];
    let pod = |spec: &Value| {
        // Without the ServiceAccount, which exists only in devportal-system.
        let mut spec = spec.clone();
        spec.as_object_mut().unwrap().remove("serviceAccountName");
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "devportal", "namespace": ns.name, "labels": template["metadata"]["labels"]},
            "spec": spec,
        })
        .to_string()
    };
    let create = |manifest: String| {
        control_plane().kubectl(
            Persona::Admin,
            &["create", "--dry-run=server", "-f", "-"],
            Some(&manifest),
        )
    };
    stdout_of(&create(pod(&template["spec"])));
    // The namespace really enforces it: the same pod allowed to escalate privileges is refused.
    let mut escalating = template["spec"].clone();
    escalating["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = json!(true);
    let refused = create(pod(&escalating));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("violates PodSecurity"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// Deletes the named webhook configurations when dropped, so a failing test never leaves a webhook
/// that refuses writes behind.
struct WebhookConfigurations(String);

impl Drop for WebhookConfigurations {
    fn drop(&mut self) {
        for kind in [
            "mutatingwebhookconfiguration",
            "validatingwebhookconfiguration",
        ] {
            let _ = control_plane().kubectl(
                Persona::Admin,
                &["delete", kind, &self.0, "--ignore-not-found"],
                None,
            );
        }
    }
}

#[tokio::test]
async fn the_runbooks_bypass_lets_writes_through_while_the_webhook_is_down() {
    // The in-cluster webhook configurations with no devportal behind them (this control plane has
    // no Service or pods): the webhook is down. Renamed, and narrowed to one namespace, so the
    // other tests' writes are untouched; otherwise exactly as rendered.
    let ns = TestNamespace::new("rbac-runbook").await;
    Api::<APIProduct>::namespaced(client(Persona::Admin).await, &ns.name)
        .create(
            &PostParams::default(),
            &fixtures::product("toys", "toystore"),
        )
        .await
        .expect("product");
    let name = format!("devportal-runbook-{}", std::process::id());
    let _cleanup = WebhookConfigurations(name.clone());
    let rendered = render("manifests");
    let configurations: Vec<Value> = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]
        .into_iter()
        .map(|kind| {
            let mut config = find(&rendered, kind, "devportal").clone();
            config["metadata"]["name"] = json!(name);
            for webhook in config["webhooks"].as_array_mut().unwrap() {
                webhook["namespaceSelector"]["matchExpressions"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"key": "kubernetes.io/metadata.name", "operator": "In", "values": [ns.name]}));
            }
            config
        })
        .collect();
    let manifest = json!({"apiVersion": "v1", "kind": "List", "items": configurations}).to_string();
    // As the guide installs: server-side apply.
    let apply = || {
        stdout_of(&control_plane().kubectl(
            Persona::Admin,
            &["apply", "--server-side", "--force-conflicts", "-f", "-"],
            Some(&manifest),
        ))
    };
    apply();

    let keys = Api::<APIKey>::namespaced(client(Persona::Consumer).await, &ns.name);
    let refused = |result: Result<APIKey, kube::Error>| match result {
        Err(kube::Error::Api(status)) => assert!(
            status.message.contains("failed calling webhook"),
            "{status:?}"
        ),
        other => panic!("expected the write to be refused, got {other:?}"),
    };
    // The API server may take a moment to see a new configuration: wait (bounded) for the refusal.
    eventually(
        "the webhook configurations to take effect",
        std::time::Duration::from_secs(10),
        || async {
            keys.create(
                &PostParams {
                    dry_run: true,
                    ..PostParams::default()
                },
                &fixtures::key("probe", "toys", "gold"),
            )
            .await
            .is_err()
            .then_some(())
        },
    )
    .await;
    refused(
        keys.create(
            &PostParams::default(),
            &fixtures::key("refused", "toys", "gold"),
        )
        .await,
    );

    // The bypass, exactly as docs/operator-guide.md gives it.
    let fail_open = |op_count: usize| {
        let ops: Vec<Value> = (0..op_count)
            .map(|i| json!({"op": "replace", "path": format!("/webhooks/{i}/failurePolicy"), "value": "Ignore"}))
            .collect();
        Value::Array(ops).to_string()
    };
    for (kind, webhooks) in [
        ("mutatingwebhookconfiguration", 1),
        ("validatingwebhookconfiguration", 2),
    ] {
        stdout_of(&control_plane().kubectl(
            Persona::Admin,
            &[
                "patch",
                kind,
                &name,
                "--type=json",
                "-p",
                &fail_open(webhooks),
            ],
            None,
        ));
    }
    let unchecked = eventually(
        "the bypass to take effect",
        std::time::Duration::from_secs(10),
        || async {
            keys.create(
                &PostParams::default(),
                &fixtures::key("unchecked", "toys", "gold"),
            )
            .await
            .ok()
        },
    )
    .await;
    assert!(
        unchecked.spec.requested_by.is_none(),
        "what the bypass risks: the key is stored without the webhook stamping its requester"
    );

    // Re-applying the manifests restores failurePolicy Fail.
    apply();
    for kind in [
        "mutatingwebhookconfiguration",
        "validatingwebhookconfiguration",
    ] {
        let policies = stdout_of(&control_plane().kubectl(
            Persona::Admin,
            &[
                "get",
                kind,
                &name,
                "-o",
                "jsonpath={.webhooks[*].failurePolicy}",
            ],
            None,
        ));
        assert!(
            policies.split_whitespace().all(|p| p == "Fail"),
            "{kind}: {policies}"
        );
    }
    eventually(
        "failurePolicy Fail to take effect again",
        std::time::Duration::from_secs(10),
        || async {
            keys.create(
                &PostParams {
                    dry_run: true,
                    ..PostParams::default()
                },
                &fixtures::key("probe", "toys", "gold"),
            )
            .await
            .is_err()
            .then_some(())
        },
    )
    .await;
    refused(
        keys.create(
            &PostParams::default(),
            &fixtures::key("refused-again", "toys", "gold"),
        )
        .await,
    );
}
