//! The operator guide's runbook for a webhook that is down: with the in-cluster webhook
//! configurations and no devportal behind them, writes are refused; the documented bypass
//! (failurePolicy Ignore) lets them through; re-applying the manifests restores failurePolicy Fail.
//!
//! The control plane is the bare one: the only webhooks are the ones this test registers.

use crate::support;

use devportal::resources::{APIKey, APIProduct};
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use support::manifests::{find, render};
use support::serial::exclusive_cluster;
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

/// The bypass commands of docs/operator-guide.md's runbook: (configuration kind, JSON patch), in
/// the order given.
fn runbook_bypass() -> Vec<(String, String)> {
    let guide = std::fs::read_to_string(support::repo_root().join("docs/operator-guide.md"))
        .expect("docs/operator-guide.md");
    let block = guide
        .split("**Bypass, temporarily")
        .nth(1)
        .and_then(|section| section.split("```sh").nth(1))
        .and_then(|block| block.split("```").next())
        .expect("the runbook's bypass commands");
    let mut commands = Vec::new();
    let mut kind = None;
    for line in block.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("kubectl patch ") {
            kind = rest.split_whitespace().next().map(String::from);
        }
        if let Some(patch) = line.strip_prefix("-p '").and_then(|p| p.strip_suffix('\'')) {
            let kind = kind.take().expect("each -p follows its kubectl patch");
            commands.push((kind, patch.to_string()));
        }
    }
    commands
}

/// The `failurePolicy` of each webhook of configuration `kind`/`name`, in order; empty output
/// gives no policies, which no expected list of policies matches.
fn failure_policies(kind: &str, name: &str) -> Vec<String> {
    let out = stdout_of(&control_plane().kubectl(
        Persona::Admin,
        &[
            "get",
            kind,
            name,
            "-o",
            "jsonpath={.webhooks[*].failurePolicy}",
        ],
        None,
    ));
    out.split_whitespace().map(String::from).collect()
}

#[tokio::test]
async fn the_runbooks_bypass_lets_writes_through_while_the_webhook_is_down() {
    let _serial = exclusive_cluster().await;
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

    // The bypass, exactly as docs/operator-guide.md gives it; it must cover every webhook of each
    // configuration, the approvals' too.
    let runbook = runbook_bypass();
    for config in &configurations {
        let kind = config["kind"].as_str().unwrap().to_lowercase();
        let webhooks = config["webhooks"].as_array().unwrap().len();
        assert!(webhooks > 0, "{kind} has webhooks");
        let every_webhook: Vec<Value> = (0..webhooks)
            .map(|i| json!({"op": "replace", "path": format!("/webhooks/{i}/failurePolicy"), "value": "Ignore"}))
            .collect();
        let patch = runbook
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, patch)| patch)
            .unwrap_or_else(|| panic!("the runbook patches {kind}: {runbook:?}"));
        assert_eq!(
            serde_json::from_str::<Value>(patch).expect("the runbook's patch is JSON"),
            Value::Array(every_webhook),
            "the runbook's bypass of {kind} sets failurePolicy Ignore on each of its {webhooks} webhooks"
        );
        stdout_of(&control_plane().kubectl(
            Persona::Admin,
            &["patch", &kind, &name, "--type=json", "-p", patch],
            None,
        ));
        assert_eq!(
            failure_policies(&kind, &name),
            vec!["Ignore"; webhooks],
            "{kind}: every webhook fails open"
        );
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

    // The approvals' webhooks fail open too: a review is stored unchecked.
    let review = json!({
        "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKeyApproval",
        "metadata": {"name": "unchecked-review", "namespace": ns.name},
        "spec": {"apiKeyRequestRef": {"name": "unchecked"}, "approved": true, "reason": "in the window"},
    });
    stdout_of(&control_plane().kubectl(
        Persona::Admin,
        &["create", "-f", "-"],
        Some(&review.to_string()),
    ));

    // Re-applying the manifests restores failurePolicy Fail, on every webhook.
    apply();
    for config in &configurations {
        let kind = config["kind"].as_str().unwrap().to_lowercase();
        let webhooks = config["webhooks"].as_array().unwrap().len();
        assert_eq!(
            failure_policies(&kind, &name),
            vec!["Fail"; webhooks],
            "{kind}: every webhook fails closed again"
        );
    }
    refused_once_in_effect(
        &keys,
        "failurePolicy Fail to take effect again",
        "refused-again",
    )
    .await;
}
