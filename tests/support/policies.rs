//! APIKeyPolicies for tests that run side by side: a policy is cluster-scoped, so each test's
//! policy selects only the test's own namespace (by the `kubernetes.io/metadata.name` label the
//! API server puts on every namespace) and is deleted when dropped; and bounded waits until the
//! webhook's cache has a policy (or has let it go), probed with server-side dry runs.

use std::time::Duration;

use devportal::resources::{APIKey, APIKeyPolicy};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use super::control_plane::control_plane;
use super::personas::Persona;
use super::waits::eventually;

/// How long a policy change may take to reach devportal's caches in a test.
pub const CACHE_WAIT: Duration = Duration::from_secs(20);

/// A policy that selects only the consumer namespace `ns`; deleted when dropped.
pub struct ScopedPolicy {
    /// The policy's name: the namespace's, with a suffix.
    pub name: String,
}

/// The spec of a policy with `action` and `rules` that matches only keys in namespace `ns`.
pub fn scoped_spec(ns: &str, action: &str, rules: Value) -> Value {
    json!({
        "match": {"consumerNamespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}},
        "rules": rules,
        "action": action,
    })
}

impl ScopedPolicy {
    /// Creates, as the admin, the policy `<ns>-<suffix>` with `action` and `rules`, matching
    /// only keys in `ns`.
    pub async fn create(ns: &str, suffix: &str, action: &str, rules: Value) -> Self {
        let name = format!("{ns}-{suffix}");
        let policy: APIKeyPolicy = serde_json::from_value(json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKeyPolicy",
            "metadata": {"name": name},
            "spec": scoped_spec(ns, action, rules),
        }))
        .expect("a valid policy");
        policies(control_plane().client(Persona::Admin).await)
            .create(&PostParams::default(), &policy)
            .await
            .expect("the admin creates the policy");
        ScopedPolicy { name }
    }

    /// Deletes the policy now.
    pub async fn delete(&self) {
        policies(control_plane().client(Persona::Admin).await)
            .delete(&self.name, &DeleteParams::default())
            .await
            .expect("the admin deletes the policy");
    }
}

impl Drop for ScopedPolicy {
    fn drop(&mut self) {
        let _ = control_plane().kubectl(
            Persona::Admin,
            &[
                "delete",
                "apikeypolicy",
                &self.name,
                "--ignore-not-found",
                "--wait=false",
            ],
            None,
        );
    }
}

/// The cluster's APIKeyPolicies, as `client` sees them.
pub fn policies(client: Client) -> Api<APIKeyPolicy> {
    Api::all(client)
}

/// A server-side dry run of creating `key` in `ns` as the consumer: the webhook's answer, and
/// nothing stored.
pub async fn dry_run(ns: &str, key: &APIKey) -> Result<APIKey, kube::Error> {
    let consumer = control_plane().client(Persona::Consumer).await;
    Api::<APIKey>::namespaced(consumer, ns)
        .create(
            &PostParams {
                dry_run: true,
                ..PostParams::default()
            },
            key,
        )
        .await
}

/// Waits (bounded) until the webhook refuses `key` in `ns` with a message containing `needle`;
/// returns the refusal's code and message.
pub async fn until_refused(ns: &str, key: &APIKey, needle: &str) -> (u16, String) {
    eventually(
        &format!("the webhook to refuse {needle:?}"),
        CACHE_WAIT,
        || async {
            match dry_run(ns, key).await {
                Err(kube::Error::Api(status)) if status.message.contains(needle) => {
                    Some((status.code, status.message))
                }
                _ => None,
            }
        },
    )
    .await
}

/// Waits (bounded) until the webhook admits `key` in `ns` (dry run); returns the object as it
/// would be stored.
pub async fn until_admitted(ns: &str, key: &APIKey) -> APIKey {
    eventually("the webhook to admit the key", CACHE_WAIT, || async {
        dry_run(ns, key).await.ok()
    })
    .await
}
