//! A key whose Secret cannot be written says so on the key: while a ResourceQuota on the
//! enforcement namespace refuses Secrets, every approved key shows phase Failed with reason
//! SecretWriteRefused and the API server's own reason and message, the refusals are counted
//! under `error="kube"` (what docs/operations.md's runbook tells operators to look for), and once
//! the quota goes every key is Approved with its Secret. Serial: it runs a controller of its own
//! with an enforcement namespace of its own.

use crate::support;

use std::time::Duration;

use devportal::names::key_reason::SECRET_WRITE_REFUSED;
use devportal::resources::APIKeyPhase;
use devportal::secrets::Role;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, ListParams};
use support::secrets::secrets_of;
use support::serial::exclusive_cluster;
use support::{Devportal, Persona, TestNamespace, control_plane, eventually, fixtures};

const WAIT: Duration = Duration::from_secs(90);
const KEYS: [&str; 3] = ["quota-a", "quota-b", "quota-c"];

#[tokio::test]
async fn keys_whose_secrets_a_quota_refuses_say_so_and_are_approved_once_it_goes() {
    let _serial = exclusive_cluster().await;
    let cp = control_plane();
    let admin = cp.client(Persona::Admin).await;
    let owner = cp.client(Persona::Owner).await;
    let ns = TestNamespace::new("quota-keys").await;
    let enforcement_ns = TestNamespace::with_bindings("quota-enforcement", &[]).await;

    // No Secret may be created in the enforcement namespace. The quota controller is not part of
    // this control plane: the status the API server enforces is written here.
    let quotas = fixtures::forbid_secrets(&admin, &enforcement_ns.name).await;

    let controller = Devportal::controller(
        &[
            "--lease-name",
            "secret-quota",
            "--enforcement-namespace",
            &enforcement_ns.name,
        ],
        &[],
    );
    let keys = fixtures::automatic_keys((&admin, &owner), &ns.name, &KEYS, WAIT).await;

    // Each key says why it is not Approved, in the API server's words.
    for name in KEYS {
        let message = eventually(
            &format!("{name} to show the refused Secret"),
            WAIT,
            || async {
                let status = keys.get(name).await.ok()?.status?;
                let failed = status.conditions.iter().find(|c| {
                    c.type_ == APIKeyPhase::Failed.as_str()
                        && c.status == "True"
                        && c.reason == SECRET_WRITE_REFUSED
                })?;
                (status.phase == Some(APIKeyPhase::Failed)).then(|| failed.message.clone())
            },
        )
        .await;
        assert!(message.starts_with("Forbidden: "), "{name}: {message}");
        assert!(
            message.contains("exceeded quota: no-secrets"),
            "{name}: {message}"
        );
    }
    let secrets = Api::<Secret>::namespaced(admin.clone(), &enforcement_ns.name);
    assert!(
        secrets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "nothing was written past the quota"
    );
    // The refusals are counted as the runbook says: `kube`, the API server refused.
    let metrics = reqwest::get(format!(
        "http://127.0.0.1:{}/metrics",
        controller.admin_port
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(
        metrics.lines().any(|l| l
            .starts_with("devportal_reconcile_errors_total{controller=\"apikey\",error=\"kube\"}")),
        "{metrics}"
    );

    // The quota goes: every key is Approved, with its enforcement Secret.
    quotas
        .delete(fixtures::NO_SECRETS_QUOTA, &DeleteParams::default())
        .await
        .unwrap();
    for name in KEYS {
        eventually(&format!("{name} to be Approved"), WAIT, || async {
            let key = keys.get(name).await.ok()?;
            (key.status?.phase == Some(APIKeyPhase::Approved)).then_some(())?;
            let written = secrets_of(&admin, &ns.name, name).await;
            written
                .iter()
                .any(|(role, secret)| {
                    role == Role::Enforcement.as_str()
                        && secret.metadata.namespace.as_deref()
                            == Some(enforcement_ns.name.as_str())
                })
                .then_some(())
        })
        .await;
    }
}
