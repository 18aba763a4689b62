//! The enforcement namespace deleted by mistake, with every enforcement Secret in it, and created
//! again: while it is gone each key says so (phase Failed, reason
//! EnforcementNamespaceUnavailable, naming the namespace) and the controller stops sending it
//! Secret writes; once it is back the controller reconciles every key at once (it logs so)
//! rather than waiting out each key's retry backoff, and each key is Approved again with an
//! enforcement Secret holding the value it had, so its consumer's key keeps working. Serial: it
//! runs a controller of its own with an enforcement namespace of its own.

use crate::support;

use std::time::Duration;

use devportal::names::key_reason::ENFORCEMENT_NAMESPACE_UNAVAILABLE;
use devportal::resources::APIKeyPhase;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use support::secrets::{api_key, consumer, enforcement, secrets_of};
use support::serial::exclusive_cluster;
use support::{Devportal, Persona, TestNamespace, control_plane, eventually, fixtures};

const WAIT: Duration = Duration::from_secs(90);
const KEYS: [&str; 3] = ["lost-a", "lost-b", "lost-c"];

#[tokio::test]
async fn keys_say_the_enforcement_namespace_is_gone_while_it_is_and_keep_their_values_when_it_returns()
 {
    let _serial = exclusive_cluster().await;
    let cp = control_plane();
    let admin = cp.client(Persona::Admin).await;
    let owner = cp.client(Persona::Owner).await;
    let ns = TestNamespace::new("lost-keys").await;
    let enforcement_ns = TestNamespace::with_bindings("lost-enforcement", &[]).await;
    let controller = Devportal::controller(
        &[
            "--lease-name",
            "namespace-loss",
            "--enforcement-namespace",
            &enforcement_ns.name,
        ],
        &[],
    );
    let keys = fixtures::automatic_keys((&admin, &owner), &ns.name, &KEYS, WAIT).await;
    // Every key Approved and enforced; the consumers' values, kept to compare (never printed).
    let mut values = Vec::new();
    for name in KEYS {
        let value = eventually(&format!("{name} to be enforced"), WAIT, || async {
            let key = keys.get(name).await.ok()?;
            (key.status?.phase == Some(APIKeyPhase::Approved)).then_some(())?;
            let written = secrets_of(&admin, &ns.name, name).await;
            (written.len() == 2).then(|| api_key(consumer(&written)))
        })
        .await;
        values.push(value);
    }

    // The namespace is deleted, its Secrets with it.
    let namespaces = Api::<Namespace>::all(admin.clone());
    namespaces
        .delete(&enforcement_ns.name, &DeleteParams::default())
        .await
        .unwrap();
    eventually("the enforcement namespace to be gone", WAIT, || async {
        namespaces
            .get_opt(&enforcement_ns.name)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    // Each key says so, naming the namespace.
    for name in KEYS {
        let message = eventually(
            &format!("{name} to say the namespace is gone"),
            WAIT,
            || async {
                let status = keys.get(name).await.ok()?.status?;
                let failed = status.conditions.iter().find(|c| {
                    c.type_ == APIKeyPhase::Failed.as_str()
                        && c.status == "True"
                        && c.reason == ENFORCEMENT_NAMESPACE_UNAVAILABLE
                })?;
                (status.phase == Some(APIKeyPhase::Failed)).then(|| failed.message.clone())
            },
        )
        .await;
        assert!(
            message.contains(&format!(
                "the enforcement namespace {} is missing or being deleted",
                enforcement_ns.name
            )),
            "{name}: {message}"
        );
    }

    // Created again: every key reconciled at once, Approved, enforced with its old value.
    namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(enforcement_ns.name.clone()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            },
        )
        .await
        .unwrap();
    for (name, value) in KEYS.iter().zip(&values) {
        eventually(&format!("{name} to be enforced again"), WAIT, || async {
            let key = keys.get(name).await.ok()?;
            (key.status?.phase == Some(APIKeyPhase::Approved)).then_some(())?;
            let written = secrets_of(&admin, &ns.name, name).await;
            let enforced = written
                .iter()
                .any(|(_, s)| s.metadata.namespace.as_deref() == Some(&*enforcement_ns.name));
            enforced.then_some(written)
        })
        .await;
        let written = secrets_of(&admin, &ns.name, name).await;
        assert!(
            api_key(enforcement(&written)) == *value,
            "{name}: the enforcement Secret holds another value than the consumer's (values not printed)"
        );
        assert!(
            api_key(consumer(&written)) == *value,
            "{name}: the consumer's Secret changed (values not printed)"
        );
    }
    let log = controller.log_text();
    assert!(
        log.contains("enforcement namespace created again; reconciling every key"),
        "the controller did not notice the namespace's return"
    );
}
