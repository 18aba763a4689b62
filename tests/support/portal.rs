//! The setting of tests/it/backstage_plugin.rs: a product owned in Backstage, the shipped
//! portal-frontend ServiceAccount running the plugin (see [`super::backstage`]), the plugin's
//! request dialog and owner inbox as the tests call them, and the same steps as kubectl users.

use std::time::Duration;

use devportal::names::REVIEWED_VIA_ANNOTATION;
use devportal::resources::{APIProduct, ApprovalMode};
use k8s_openapi::api::authorization::v1::ResourceAttributes;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use super::backstage::{Plugin, key_value, phase, secret_name};
use super::control_plane::{control_plane_with_devportal, stdout_of};
use super::fixtures;
use super::front_end::authorizer_says;
use super::namespaces::TestNamespace;
use super::personas::Persona;
use super::waits::eventually;

/// How long the replay waits for devportal to converge.
pub const WAIT: Duration = Duration::from_secs(60);
/// Where devportal writes enforcement Secrets on the local control plane.
pub const KUADRANT_NAMESPACE: &str = "kuadrant-system";
/// The shipped front end's ServiceAccount (manifests/rbac/portal-frontend.yaml).
pub const FRONT_END: (&str, &str) = ("backstage", "portal-frontend");

/// The admin's client.
pub async fn admin() -> Client {
    control_plane_with_devportal().client(Persona::Admin).await
}

/// `approve` on APIProduct `toys` in `ns`.
pub fn approving(ns: &str) -> ResourceAttributes {
    ResourceAttributes {
        group: Some("devportal.kuadrant.io".into()),
        resource: Some("apiproducts".into()),
        verb: Some("approve".into()),
        name: Some("toys".into()),
        namespace: Some(ns.into()),
        ..ResourceAttributes::default()
    }
}

/// A namespace with the manual product `toys` (plans and AuthPolicy `auth` discovered), owned in
/// Backstage by `owner` (annotation `backstage.io/owner`), who holds `devportal-api-owner` there;
/// `consumers` are bound as consumers.
pub async fn product_namespace(prefix: &str, owner: &str, consumers: &[&str]) -> TestNamespace {
    let admin = admin().await;
    let ns = TestNamespace::with_bindings(
        prefix,
        &[
            ("devportal-api-owner", &[owner]),
            ("devportal-api-consumer", consumers),
        ],
    )
    .await;
    fixtures::published_product(&admin, &admin, &ns.name, ApprovalMode::Manual).await;
    let products = Api::<APIProduct>::namespaced(admin.clone(), &ns.name);
    products
        .patch(
            "toys",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"backstage.io/owner": owner}}})),
        )
        .await
        .expect("the product is owned in Backstage");
    eventually(
        "toys' plans and AuthPolicy to be discovered",
        WAIT,
        || async {
            let status = products.get("toys").await.ok()?.status?;
            let auth = status
                .conditions
                .iter()
                .any(|c| c.type_ == "AuthPolicyDiscovered" && c.status == "True");
            (auth && !status.discovered_plans.is_empty()).then_some(())
        },
    )
    .await;
    authorizer_says(&admin, owner, approving(&ns.name)).await;
    ns
}

/// manifests/rbac/portal-frontend.yaml applied as shipped (in its namespace `backstage`), and the
/// plugin as its ServiceAccount; with the ServiceAccount's username.
pub async fn shipped_plugin(admin: &Client) -> (Plugin, String) {
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": FRONT_END.0}})).unwrap();
    match Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &namespace)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(error) => panic!("namespace {}: {error}", FRONT_END.0),
    }
    let manifest = super::control_plane::repo_root().join("manifests/rbac/portal-frontend.yaml");
    // Other tests of the binary create the same ClusterRoles (tests/support/front_end.rs): an
    // apply that loses that race (AlreadyExists) is applied again.
    eventually(
        "manifests/rbac/portal-frontend.yaml to apply",
        WAIT,
        || async {
            control_plane_with_devportal()
                .kubectl(
                    Persona::Admin,
                    &["apply", "-f", manifest.to_str().unwrap()],
                    None,
                )
                .status
                .success()
                .then_some(())
        },
    )
    .await;
    let username = format!("system:serviceaccount:{}:{}", FRONT_END.0, FRONT_END.1);
    let config = super::front_end::token_config(admin, FRONT_END.0, FRONT_END.1).await;
    authorizer_says(
        admin,
        &username,
        ResourceAttributes {
            group: Some(String::new()),
            resource: Some("namespaces".into()),
            verb: Some("create".into()),
            ..ResourceAttributes::default()
        },
    )
    .await;
    let plugin = Plugin {
        client: Client::try_from(config).unwrap(),
    };
    (plugin, username)
}

/// Deletes the plugin's consumer namespace of `user` when dropped (namespaces outlive a test).
pub struct ConsumerNamespace(pub String);

impl Drop for ConsumerNamespace {
    fn drop(&mut self) {
        let _ = control_plane_with_devportal().kubectl(
            Persona::Admin,
            &[
                "delete",
                "namespace",
                &self.0,
                "--wait=false",
                "--ignore-not-found",
            ],
            None,
        );
    }
}

/// `metadata.name` of an object as JSON.
pub fn name_of(object: &Value) -> String {
    object["metadata"]["name"].as_str().unwrap().to_string()
}

/// The request dialog: generate the key and Secret name, POST /secrets, POST /requests.
pub async fn plugin_request(plugin: &Plugin, user: &str, product_ns: &str) -> (Value, String) {
    let value = key_value();
    assert!(value.len() == 32 && value.chars().all(|c| c.is_ascii_hexdigit()));
    let secret = secret_name("toys");
    plugin.create_secret(user, &secret, &value).await;
    let key = plugin
        .create_request(
            user,
            Some("unknown"),
            (product_ns, "toys"),
            "gold",
            "replayed from the plugin",
            &secret,
        )
        .await
        .expect("POST /requests: the APIKey is admitted");
    (key, value)
}

/// The owner's inbox (GET /requests) until it lists the request of key `key` in `status`, in the
/// product's namespace and cluster-wide alike.
pub async fn in_inbox(
    plugin: &Plugin,
    owner: &str,
    product_ns: &str,
    key: &str,
    status: &str,
) -> Value {
    eventually(
        &format!("the request of {key} to be listed {status}"),
        WAIT,
        || async {
            let here = plugin
                .requests(owner, Some(product_ns), "toys", Some(status))
                .await;
            let everywhere = plugin.requests(owner, None, "toys", Some(status)).await;
            let found = here
                .into_iter()
                .find(|r| r["spec"]["apiKeyRef"]["name"] == key)?;
            everywhere
                .iter()
                .any(|r| r["metadata"]["uid"] == found["metadata"]["uid"])
                .then_some(found)
        },
    )
    .await
}

/// The persona's kubectl, stdout of a successful call.
pub fn kubectl(persona: Persona, args: &[&str], stdin: Option<&str>) -> String {
    stdout_of(&control_plane_with_devportal().kubectl(persona, args, stdin))
}

/// The APIKeyRequest of key `key` in `ns`, as `persona` lists it with kubectl, once in `phase`.
pub async fn kubectl_request(persona: Persona, ns: &str, key: &str, phase_wanted: &str) -> Value {
    eventually(
        &format!("the request of {key} to be {phase_wanted}"),
        WAIT,
        || async {
            let listed: Value = serde_json::from_str(&kubectl(
                persona,
                &["get", "apikeyrequests", "-n", ns, "-o", "json"],
                None,
            ))
            .ok()?;
            listed["items"]
                .as_array()?
                .iter()
                .find(|r| r["spec"]["apiKeyRef"]["name"] == key && phase(r) == phase_wanted)
                .cloned()
        },
    )
    .await
}

/// The owner reviews `request` with `kubectl create`, claiming to have come through a front end
/// (a forged `reviewed-via`); returns the stored APIKeyApproval.
pub fn kubectl_review(ns: &str, request: &str, approved: bool) -> Value {
    let review = json!({
        "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKeyApproval",
        "metadata": {"name": format!("{request}-review"), "namespace": ns,
                     "annotations": {REVIEWED_VIA_ANNOTATION: "system:serviceaccount:backstage:portal-frontend"}},
        "spec": {"apiKeyRequestRef": {"name": request}, "approved": approved,
                 "reason": if approved { "welcome" } else { "not now" }},
    });
    let stored: Value = serde_json::from_str(&kubectl(
        Persona::Owner,
        &["create", "-f", "-", "-o", "json"],
        Some(&review.to_string()),
    ))
    .unwrap();
    assert_eq!(stored["spec"]["reviewedBy"], "owner");
    assert!(
        stored["metadata"]["annotations"][REVIEWED_VIA_ANNOTATION].is_null(),
        "only devportal records a front end: {stored}"
    );
    stored
}

pub fn kubectl_key(ns: &str, name: &str) {
    let key = json!({
        "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"apiProductRef": {"name": "toys"}, "planTier": "gold", "useCase": "kubectl"},
    });
    kubectl(
        Persona::Consumer,
        &["create", "-f", "-"],
        Some(&key.to_string()),
    );
}
