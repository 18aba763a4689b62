//! The kustomize install in a namespace of the operator's choosing: examples/overlays/namespace
//! moves every object and every reference to the namespace (Service references of the webhook
//! configurations, ServiceAccount subjects, the certificate's DNS names, the CA injector's source,
//! the Secret guard's ServiceAccount, the alert's scrape targets), and the API server accepts it.

use crate::support;

use serde_json::Value;
use support::manifests::{find, render, strings};
use support::serial::exclusive_cluster;
use support::{Persona, SYSTEM_NAMESPACE, control_plane, stdout_of};

/// The namespace the example overlay installs into.
const NAMESPACE: &str = "devportal";

/// Kinds this control plane has no CRD for (cert-manager, Prometheus Operator).
const FOREIGN_KINDS: &[&str] = &["Certificate", "Issuer", "ServiceMonitor", "PrometheusRule"];

#[tokio::test]
async fn the_example_overlay_moves_everything_to_another_namespace() {
    let _serial = exclusive_cluster().await;
    let objects = render("examples/overlays/namespace");
    let text = serde_json::to_string(&objects).unwrap();
    assert!(
        !text.contains(SYSTEM_NAMESPACE),
        "no {SYSTEM_NAMESPACE} is left: {}",
        objects
            .iter()
            .filter(|o| o.to_string().contains(SYSTEM_NAMESPACE))
            .map(|o| format!("{} {}", o["kind"], o["metadata"]["name"]))
            .collect::<Vec<_>>()
            .join(", ")
    );
    find(&objects, "Namespace", NAMESPACE);
    for object in &objects {
        if let Some(namespace) = object["metadata"]["namespace"].as_str() {
            assert_eq!(
                namespace, NAMESPACE,
                "{} {}",
                object["kind"], object["metadata"]["name"]
            );
        }
    }
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        let configuration = find(&objects, kind, "devportal");
        for webhook in configuration["webhooks"].as_array().unwrap() {
            assert_eq!(webhook["clientConfig"]["service"]["namespace"], NAMESPACE);
        }
        assert_eq!(
            configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            format!("{NAMESPACE}/devportal-webhook")
        );
    }
    for binding in ["devportal-controller", "devportal-apikey-secrets"] {
        let binding = find(&objects, "ClusterRoleBinding", binding);
        assert_eq!(binding["subjects"][0]["namespace"], NAMESPACE);
    }
    assert_eq!(
        find(&objects, "RoleBinding", "devportal")["subjects"][0]["namespace"],
        NAMESPACE
    );
    let certificate = find(&objects, "Certificate", "devportal-webhook");
    assert_eq!(
        strings(&certificate["spec"]["dnsNames"]),
        [
            format!("devportal.{NAMESPACE}.svc"),
            format!("devportal.{NAMESPACE}.svc.cluster.local")
        ]
    );
    let policy = find(
        &objects,
        "ValidatingAdmissionPolicy",
        "devportal-secret-writes",
    );
    assert_eq!(
        policy["spec"]["matchConditions"][0]["expression"],
        format!("request.userInfo.username == 'system:serviceaccount:{NAMESPACE}:devportal'")
    );
    assert!(
        policy["spec"]["validations"][0]["expression"]
            .as_str()
            .unwrap()
            .starts_with(&format!("request.namespace == '{NAMESPACE}' ||"))
    );
    let rules = find(&objects, "PrometheusRule", "devportal");
    let no_replica = rules["spec"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["alert"] == "DevportalNoReplicaUp")
        .unwrap();
    assert_eq!(
        no_replica["expr"]
            .as_str()
            .unwrap()
            .matches(&format!("namespace=\"{NAMESPACE}\""))
            .count(),
        2
    );

    // The API server accepts it (what this control plane has CRDs for), in the namespace it names.
    let accepted: Vec<&Value> = objects
        .iter()
        .filter(|o| !FOREIGN_KINDS.contains(&o["kind"].as_str().unwrap()))
        .collect();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": accepted});
    let existed = stdout_of(&control_plane().kubectl(
        Persona::Admin,
        &[
            "get",
            "namespace",
            NAMESPACE,
            "--ignore-not-found",
            "-o",
            "name",
        ],
        None,
    ));
    if existed.trim().is_empty() {
        stdout_of(&control_plane().kubectl(
            Persona::Admin,
            &["create", "namespace", NAMESPACE],
            None,
        ));
    }
    let out = control_plane().kubectl(
        Persona::Admin,
        &[
            "apply",
            "--dry-run=server",
            "--server-side",
            "--validate=strict",
            "-f",
            "-",
        ],
        Some(&list.to_string()),
    );
    if existed.trim().is_empty() {
        stdout_of(&control_plane().kubectl(
            Persona::Admin,
            &["delete", "namespace", NAMESPACE, "--wait=false"],
            None,
        ));
    }
    let out = stdout_of(&out);
    assert!(
        out.contains("deployment.apps/devportal serverside-applied (server dry run)"),
        "{out}"
    );
}
