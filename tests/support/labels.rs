//! Helpers of tests/it/shared_labels.rs (issue 27, items 2 and 3): a tenant who runs their own API,
//! and waits on products' conditions, keys' phases and enforcement Secrets.

use std::time::Duration;

use devportal::names::{APIKEY_UID_LABEL, ROLE_LABEL};
use devportal::resources::{APIKey, APIKeyPhase, APIProduct};
use devportal::secrets::Role;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role as RbacRole, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::{Api, Client};

use super::control_plane::control_plane_with_devportal;
use super::namespaces::TestNamespace;
use super::personas::Persona;
use super::waits::eventually;

/// How long the waits here wait.
pub const WAIT: Duration = Duration::from_secs(60);

/// A tenant's own namespace: `consumer2` owns the products there (`devportal-api-owner`) and, as
/// a team that runs its own API, writes its routes and Kuadrant policies (and, where OLM
/// aggregates Kuadrant's CRDs into `edit`, Kuadrant CRs).
pub async fn tenant_namespace(prefix: &str) -> TestNamespace {
    let ns = TestNamespace::with_bindings(
        prefix,
        &[
            ("devportal-api-owner", &["consumer2"]),
            ("devportal-api-consumer", &["consumer2"]),
        ],
    )
    .await;
    let admin = control_plane_with_devportal().client(Persona::Admin).await;
    let rule = |group: &str, resources: &[&str]| PolicyRule {
        api_groups: Some(vec![group.into()]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: vec!["*".into()],
        ..PolicyRule::default()
    };
    let role = RbacRole {
        metadata: ObjectMeta {
            name: Some("api-author".into()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![
            rule("gateway.networking.k8s.io", &["httproutes"]),
            rule("kuadrant.io", &["authpolicies", "kuadrants"]),
            rule("extensions.kuadrant.io", &["planpolicies"]),
        ]),
    };
    Api::<RbacRole>::namespaced(admin.clone(), &ns.name)
        .create(&PostParams::default(), &role)
        .await
        .expect("role created");
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some("api-author".into()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: "api-author".into(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "User".into(),
            name: Persona::Consumer2.name().into(),
            namespace: None,
        }]),
    };
    Api::<RoleBinding>::namespaced(admin, &ns.name)
        .create(&PostParams::default(), &binding)
        .await
        .expect("role binding created");
    super::access::binding_in_effect(
        Persona::Consumer2,
        &["create", "authpolicies.kuadrant.io", "-n", &ns.name],
    )
    .await;
    ns
}

/// The condition `type_` of product `name` once `check` accepts it.
pub async fn product_condition_where(
    products: &Api<APIProduct>,
    name: &str,
    type_: &str,
    check: impl Fn(&Condition) -> bool,
) -> Condition {
    eventually(&format!("{name}'s {type_} condition"), WAIT, || async {
        let product = products.get(name).await.ok()?;
        product
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == type_ && check(c))
    })
    .await
}

/// The key `name` once it is in `phase`, with that phase's condition.
pub async fn key_in_phase(
    keys: &Api<APIKey>,
    name: &str,
    phase: APIKeyPhase,
) -> (APIKey, Condition) {
    eventually(
        &format!("{name} to be {}", phase.as_str()),
        WAIT,
        || async {
            let key = keys.get(name).await.ok()?;
            let status = key.status.clone()?;
            if status.phase != Some(phase) {
                return None;
            }
            let condition = status
                .conditions
                .into_iter()
                .find(|c| c.type_ == phase.as_str())?;
            Some((key, condition))
        },
    )
    .await
}

/// Every enforcement Secret of the key with `uid`, in any namespace.
pub async fn enforcement_secrets(admin: &Client, uid: &str) -> Vec<Secret> {
    Api::<Secret>::all(admin.clone())
        .list(&ListParams::default().labels(&format!(
            "{APIKEY_UID_LABEL}={uid},{ROLE_LABEL}={}",
            Role::Enforcement.as_str()
        )))
        .await
        .expect("secrets listed")
        .items
}
