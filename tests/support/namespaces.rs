//! A namespace of its own for each test, with the personas bound in it.

use std::sync::atomic::{AtomicU32, Ordering};

use devportal::names::GROUP;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, RoleBinding, RoleRef, Subject};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

use super::control_plane::control_plane;
use super::personas::Persona;
use super::waits::eventually;

/// A namespace of its own for one test, with the owner and both consumers bound to their persona
/// roles. It is deleted when dropped.
pub struct TestNamespace {
    /// The namespace's name.
    pub name: String,
}

impl TestNamespace {
    /// Creates a fresh namespace as the admin and binds the personas in it.
    pub async fn new(prefix: &str) -> Self {
        Self::with_bindings(
            prefix,
            &[
                ("devportal-api-owner", &["owner"]),
                ("devportal-api-consumer", &["consumer", "consumer2"]),
            ],
        )
        .await
    }

    /// Creates a fresh namespace as the admin with only the given (ClusterRole, users) bindings.
    pub async fn with_bindings(prefix: &str, roles: &[(&str, &[&str])]) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let cp = control_plane();
        let admin = cp.client(Persona::Admin).await;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "{prefix}-{:x}{:x}-{}",
            std::process::id() & 0xfff,
            nanos & 0xffff,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([(format!("{GROUP}/test"), "true".to_string())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(admin.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .expect("namespace created");
        let bindings = Api::<RoleBinding>::namespaced(admin, &name);
        for &(role, users) in roles {
            let binding = RoleBinding {
                metadata: ObjectMeta {
                    name: Some(role.into()),
                    ..ObjectMeta::default()
                },
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "ClusterRole".into(),
                    name: role.into(),
                },
                subjects: Some(
                    users
                        .iter()
                        .map(|user| Subject {
                            api_group: Some("rbac.authorization.k8s.io".into()),
                            kind: "User".into(),
                            name: (*user).into(),
                            namespace: None,
                        })
                        .collect(),
                ),
            };
            bindings
                .create(&PostParams::default(), &binding)
                .await
                .expect("role binding created");
        }
        let admin = cp.client(Persona::Admin).await;
        for &(role, users) in roles {
            for user in users {
                binding_in_effect(&admin, &name, role, user).await;
            }
        }
        TestNamespace { name }
    }
}

/// Waits (bounded) until the API server's RBAC authorizer, which reads bindings from a watch
/// cache, lets `user` do the first thing `role` grants in `namespace`: a test's first request
/// right after the binding would otherwise be refused now and then on a busy machine.
async fn binding_in_effect(admin: &Client, namespace: &str, role: &str, user: &str) {
    let Ok(role) = Api::<ClusterRole>::all(admin.clone()).get(role).await else {
        return; // a role that does not exist grants nothing to wait for
    };
    let Some(rule) = role.rules.unwrap_or_default().into_iter().find(|rule| {
        rule.resource_names.as_ref().is_none_or(Vec::is_empty)
            && rule.resources.as_ref().is_some_and(|r| !r.is_empty())
    }) else {
        return;
    };
    let attributes = ResourceAttributes {
        group: rule.api_groups.unwrap_or_default().into_iter().next(),
        resource: rule.resources.unwrap_or_default().into_iter().next(),
        verb: rule.verbs.into_iter().next(),
        namespace: Some(namespace.into()),
        ..ResourceAttributes::default()
    };
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.into()),
            resource_attributes: Some(attributes),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    let reviews = Api::<SubjectAccessReview>::all(admin.clone());
    eventually(
        &format!("the binding of {user} in {namespace} to take effect"),
        std::time::Duration::from_secs(10),
        || async {
            let status = reviews
                .create(&PostParams::default(), &review)
                .await
                .ok()?
                .status?;
            status.allowed.then_some(())
        },
    )
    .await;
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        // Best effort; a local control plane is thrown away with everything in it anyway.
        let _ = control_plane().kubectl(
            Persona::Admin,
            &[
                "delete",
                "namespace",
                &self.name,
                "--wait=false",
                "--ignore-not-found",
            ],
            None,
        );
    }
}
