//! The operator guide's runbook for a webhook that is down: with the in-cluster webhook
//! configurations and no devportal behind them, writes are refused; the documented bypass
//! (failurePolicy Ignore) lets them through; re-applying the manifests restores failurePolicy Fail.
//!
//! The control plane is the bare one: the only webhooks are the ones this test registers.

mod support;

use devportal::resources::{APIKey, APIProduct};
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use support::manifests::{find, render};
use support::{Persona, TestNamespace, client, control_plane, eventually, fixtures, stdout_of};

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

/// Waits (bounded) until the API server refuses a dry-run key request in `keys`, as it does once it
/// sees a webhook configuration with failurePolicy Fail and nothing behind it (`what` names that
/// change); then asserts that a real request for key `name` is refused for want of the webhook.
async fn refused_once_in_effect(keys: &Api<APIKey>, what: &str, name: &str) {
    eventually(what, std::time::Duration::from_secs(10), || async {
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
    })
    .await;
    match keys
        .create(&PostParams::default(), &fixtures::key(name, "toys", "gold"))
        .await
    {
        Err(kube::Error::Api(status)) => assert!(
            status.message.contains("failed calling webhook"),
            "{status:?}"
        ),
        other => panic!("expected the write to be refused, got {other:?}"),
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
    refused_once_in_effect(
        &keys,
        "the webhook configurations to take effect",
        "refused",
    )
    .await;

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
    refused_once_in_effect(
        &keys,
        "failurePolicy Fail to take effect again",
        "refused-again",
    )
    .await;
}
