//! A portal front end as the tests need it: a ServiceAccount with the API rights of
//! manifests/rbac/portal-frontend.yaml, its token as a kube `Config` (to impersonate with, or
//! not), narrowed `impersonate` grants, and a create that returns the admission warnings.

use std::time::Duration;

use devportal::resources::APIKey;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use kube::api::{ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, ResourceExt};
use serde_json::json;

use super::control_plane::{control_plane, repo_root};
use super::personas::Persona;
use super::waits::eventually;

const WAIT: Duration = Duration::from_secs(30);
/// The front end's API rights, as shipped.
pub const FRONT_END_ROLE: &str = "devportal-portal-frontend";

/// Creates the ClusterRoles of manifests/rbac/portal-frontend.yaml (once per control plane).
pub async fn shipped_front_end_roles(admin: &Client) {
    let text = std::fs::read_to_string(repo_root().join("manifests/rbac/portal-frontend.yaml"))
        .expect("manifests/rbac/portal-frontend.yaml reads");
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value: serde_json::Value =
            serde::Deserialize::deserialize(document).expect("a YAML document");
        if value["kind"] != "ClusterRole" {
            continue;
        }
        let role: ClusterRole = serde_json::from_value(value).expect("a ClusterRole");
        match Api::<ClusterRole>::all(admin.clone())
            .create(&PostParams::default(), &role)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => panic!("cluster role {}: {error}", role.name_any()),
        }
    }
}

/// Binds ClusterRole `role` in `ns` to `subject` (`{kind, name, namespace?}`).
pub async fn bind(admin: &Client, ns: &str, role: &str, subject: serde_json::Value) {
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": format!("{role}-{}", subject["name"].as_str().unwrap().replace(['/', ':'], "-"))},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [subject]
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await
        .expect("role binding created");
}

/// Lets ServiceAccount `ns/sa` impersonate exactly `users` and `groups` (cluster-wide, as
/// impersonation is), the narrowed form docs/front-ends.md recommends.
pub async fn may_impersonate(admin: &Client, ns: &str, sa: &str, users: &[&str], groups: &[&str]) {
    let name = format!("{ns}-{sa}-impersonate");
    let mut rules = vec![json!({"apiGroups": [""], "resources": ["users"],
                                "resourceNames": users, "verbs": ["impersonate"]})];
    if !groups.is_empty() {
        rules.push(json!({"apiGroups": [""], "resources": ["groups"],
                          "resourceNames": groups, "verbs": ["impersonate"]}));
    }
    let role: ClusterRole =
        serde_json::from_value(json!({"metadata": {"name": name}, "rules": rules})).unwrap();
    Api::<ClusterRole>::all(admin.clone())
        .create(&PostParams::default(), &role)
        .await
        .expect("impersonation role created");
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(&PostParams::default(), &binding)
        .await
        .expect("impersonation binding created");
}

/// Waits until the API server's authorizer (which reads bindings from a cache) answers `allowed`
/// for `user` doing `attributes`, as the webhook will ask it.
pub async fn authorizer_says(admin: &Client, user: &str, attributes: ResourceAttributes) {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.into()),
            groups: Some(vec![
                "system:serviceaccounts".into(),
                "system:authenticated".into(),
            ]),
            resource_attributes: Some(attributes.clone()),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    let reviews = Api::<SubjectAccessReview>::all(admin.clone());
    eventually(
        &format!("{user} to be allowed {attributes:?}"),
        WAIT,
        || async {
            let answer = reviews.create(&PostParams::default(), &review).await.ok()?;
            answer.status.filter(|s| s.allowed).map(|_| ())
        },
    )
    .await;
}

/// A ServiceAccount `ns/name` with the shipped front-end API rights in `ns`, its username, and
/// a kube `Config` that authenticates with its token (impersonating no one yet).
pub async fn front_end(admin: &Client, ns: &str, name: &str) -> (String, Config) {
    shipped_front_end_roles(admin).await;
    let accounts = Api::<ServiceAccount>::namespaced(admin.clone(), ns);
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    accounts
        .create(&PostParams::default(), &account)
        .await
        .expect("service account created");
    let username = format!("system:serviceaccount:{ns}:{name}");
    bind(
        admin,
        ns,
        FRONT_END_ROLE,
        json!({"kind": "ServiceAccount", "name": name, "namespace": ns}),
    )
    .await;
    let config = token_config(admin, ns, name).await;
    authorizer_says(
        admin,
        &username,
        ResourceAttributes {
            group: Some("devportal.kuadrant.io".into()),
            resource: Some("apikeys".into()),
            verb: Some("create".into()),
            namespace: Some(ns.into()),
            ..ResourceAttributes::default()
        },
    )
    .await;
    (username, config)
}

/// A kube `Config` that authenticates with a fresh token of ServiceAccount `ns/name`.
pub async fn token_config(admin: &Client, ns: &str, name: &str) -> Config {
    let request: TokenRequest = serde_json::from_value(json!({
        "spec": {"audiences": [], "expirationSeconds": 3600}
    }))
    .unwrap();
    let token: TokenRequest = Api::<ServiceAccount>::namespaced(admin.clone(), ns)
        .create_subresource("token", name, &PostParams::default(), &request)
        .await
        .expect("a token for the service account");
    let token = token.status.expect("a token").token;
    let kubeconfig = Kubeconfig::read_from(control_plane().kubeconfig(Persona::Admin)).unwrap();
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    config.auth_info = serde_json::from_value(json!({"token": token})).unwrap();
    config
}

/// `impersonate` on the user `user`.
pub fn impersonating(user: &str) -> ResourceAttributes {
    ResourceAttributes {
        group: Some(String::new()),
        resource: Some("users".into()),
        verb: Some("impersonate".into()),
        name: Some(user.into()),
        ..ResourceAttributes::default()
    }
}

/// Creates `key` in `ns` through `client` and returns the stored key and the API server's
/// `Warning` headers (the admission warnings).
pub async fn create_with_warnings(
    client: &Client,
    ns: &str,
    key: &APIKey,
) -> (APIKey, Vec<String>) {
    let request = kube::core::Request::new(format!(
        "/apis/devportal.kuadrant.io/v1alpha1/namespaces/{ns}/apikeys"
    ))
    .create(&PostParams::default(), serde_json::to_vec(key).unwrap())
    .unwrap();
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .expect("the create is sent");
    let status = response.status();
    let warnings = response
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap_or_default().to_string())
        .collect();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert!(
        status.is_success(),
        "create failed: {status} {}",
        String::from_utf8_lossy(&body)
    );
    (serde_json::from_slice(&body).unwrap(), warnings)
}
