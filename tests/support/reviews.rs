//! The setting of tests/it/review_order.rs (issue 27's reviews and routes): a manual product, a
//! key request and its APIKeyRequest, reviews as the OpenShift console plugin writes them, waits
//! on a key's phase and enforcement and on an APIKeyApproval's `Valid` condition, and Roles.

use std::time::Duration;

use devportal::names::APIKEY_UID_LABEL;
use devportal::names::approval_condition::VALID;
use devportal::resources::{APIKey, APIKeyApproval, APIKeyPhase, APIKeyRequest, ApprovalMode};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, ResourceExt};
use serde_json::json;

use super::control_plane::control_plane_with_devportal;
use super::fixtures;
use super::namespaces::TestNamespace;
use super::personas::Persona;
use super::secrets::secrets_of;
use super::waits::eventually;

/// How long the tests wait for devportal to converge.
pub const WAIT: Duration = Duration::from_secs(60);

/// A client that is `user` (in `system:authenticated`), by the admin's impersonation.
pub async fn as_user(user: &str) -> Client {
    let cp = control_plane_with_devportal();
    let kubeconfig = Kubeconfig::read_from(cp.kubeconfig(Persona::Admin)).expect("kubeconfig");
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is valid");
    config.auth_info.impersonate = Some(user.into());
    config.auth_info.impersonate_groups = Some(vec!["system:authenticated".into()]);
    Client::try_from(config).expect("client builds")
}

/// A namespace (owner, consumers bound) with the manual product `toys`, Ready; and the admin.
pub async fn manual_product(prefix: &str) -> (TestNamespace, Client) {
    let cp = control_plane_with_devportal();
    let ns = TestNamespace::new(prefix).await;
    let admin = cp.client(Persona::Admin).await;
    fixtures::published_product(&admin, &admin, &ns.name, ApprovalMode::Manual).await;
    fixtures::product_ready(&admin, &ns.name, WAIT).await;
    (ns, admin)
}

/// The consumer requests `name` for `toys` at gold; returns the key and its APIKeyRequest's name.
pub async fn requested(ns: &str, name: &str) -> (APIKey, String) {
    let consumer = control_plane_with_devportal()
        .client(Persona::Consumer)
        .await;
    let key = Api::<APIKey>::namespaced(consumer, ns)
        .create(&PostParams::default(), &fixtures::key(name, "toys", "gold"))
        .await
        .expect("the consumer requests a key");
    let admin = control_plane_with_devportal().client(Persona::Admin).await;
    let requests = Api::<APIKeyRequest>::namespaced(admin, ns);
    let uid = key.uid().unwrap();
    let request = eventually(&format!("the request of {name}"), WAIT, || async {
        let listed = requests.list(&ListParams::default()).await.ok()?;
        listed
            .items
            .into_iter()
            .find(|r| r.labels().get(APIKEY_UID_LABEL) == Some(&uid))
    })
    .await;
    (key, request.name_any())
}

/// An APIKeyApproval as the OpenShift console plugin writes it (`handleAPIKeyApprovalOrDenial`).
pub fn console_review(name: &str, request: &str, approved: bool, reviewer: &str) -> APIKeyApproval {
    serde_json::from_value(json!({
        "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKeyApproval",
        "metadata": {"name": name},
        "spec": console_spec(request, approved, reviewer)
    }))
    .unwrap()
}

/// The spec the console sends for a decision (`reviewedAt: new Date().toISOString()`).
pub fn console_spec(request: &str, approved: bool, reviewer: &str) -> serde_json::Value {
    let now = k8s_openapi::jiff::Timestamp::now();
    json!({
        "apiKeyRequestRef": {"name": request}, "approved": approved,
        "reviewedBy": reviewer,
        "reviewedAt": now.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "reason": if approved { "ApprovedByOwner" } else { "DeniedByOwner" },
        "message": if approved { "Approved" } else { "Denied" }
    })
}

/// Waits until the key `ns/name` is in `phase`.
pub async fn phase(admin: &Client, ns: &str, name: &str, phase: APIKeyPhase) -> APIKey {
    let keys = Api::<APIKey>::namespaced(admin.clone(), ns);
    eventually(&format!("{name} to be {phase:?}"), WAIT, || async {
        let key = keys.get(name).await.ok()?;
        (key.status.as_ref()?.phase == Some(phase)).then_some(key)
    })
    .await
}

/// How many enforcement Secrets the key `ns/name` has.
pub async fn enforced(admin: &Client, ns: &str, name: &str) -> usize {
    secrets_of(admin, ns, name)
        .await
        .iter()
        .filter(|(role, _)| role == "enforcement")
        .count()
}

/// Waits until the key `ns/name` is Approved and enforced.
pub async fn active(admin: &Client, ns: &str, name: &str) {
    phase(admin, ns, name, APIKeyPhase::Approved).await;
    eventually("the enforcement Secret", WAIT, || async {
        (enforced(admin, ns, name).await == 1).then_some(())
    })
    .await;
}

/// Holds for a few seconds: the key `ns/name` stays in `wanted` and has no enforcement Secret.
pub async fn stays_unenforced(admin: &Client, ns: &str, name: &str, wanted: APIKeyPhase) {
    let keys = Api::<APIKey>::namespaced(admin.clone(), ns);
    // The controller deletes the enforcement Secret before it writes the phase: wait for both.
    eventually("the enforcement Secret to be gone", WAIT, || async {
        (enforced(admin, ns, name).await == 0).then_some(())
    })
    .await;
    phase(admin, ns, name, wanted).await;
    for _ in 0..10 {
        let key = keys.get(name).await.unwrap();
        assert_eq!(
            key.status.as_ref().and_then(|s| s.phase),
            Some(wanted),
            "{:?}",
            key.spec.approval
        );
        assert_eq!(
            enforced(admin, ns, name).await,
            0,
            "the key is not enforced"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until the APIKeyApproval `ns/name` says, for its current generation, `Valid` with
/// `status` and `reason`; returns its message.
pub async fn valid(admin: &Client, ns: &str, name: &str, status: &str, reason: &str) -> String {
    let approvals = Api::<APIKeyApproval>::namespaced(admin.clone(), ns);
    eventually(
        &format!("APIKeyApproval {name} to say Valid={status} {reason}"),
        WAIT,
        || async {
            let approval = approvals.get(name).await.ok()?;
            let current = approval.status.as_ref()?;
            let condition = current.conditions.iter().find(|c| c.type_ == VALID)?;
            (current.observed_generation == approval.metadata.generation
                && condition.status == status
                && condition.reason == reason)
                .then(|| condition.message.clone())
        },
    )
    .await
}

/// The message of a refusal.
pub fn refusal<T: std::fmt::Debug>(what: &str, result: Result<T, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) => status.message,
        other => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

/// A rule on `resource` of devportal's group, for `names` (all when empty).
pub fn rule(resource: &str, names: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec!["devportal.kuadrant.io".into()]),
        resources: Some(vec![resource.into()]),
        resource_names: (!names.is_empty()).then(|| names.iter().map(|n| n.to_string()).collect()),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..PolicyRule::default()
    }
}

/// A Role of `rules` in `ns`, bound to `user`.
pub async fn grant(admin: &Client, ns: &str, user: &str, rules: Vec<PolicyRule>) {
    let role = Role {
        metadata: ObjectMeta {
            name: Some(user.into()),
            ..ObjectMeta::default()
        },
        rules: Some(rules),
    };
    Api::<Role>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &role)
        .await
        .expect("role created");
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some(user.into()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: user.into(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "User".into(),
            name: user.into(),
            namespace: None,
        }]),
    };
    Api::<RoleBinding>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await
        .expect("binding created");
}
