//! The install manifests: that `manifests/` (and its optional cert-manager and monitoring
//! components) renders into a hardened, highly available install, and that the real API server
//! accepts it (server-side dry run, strict validation, Pod Security "restricted").

use crate::support;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use support::manifests::{find, render, strings};
use support::serial::exclusive_cluster;
use support::{Persona, SYSTEM_NAMESPACE, TestNamespace, control_plane, stdout_of};

/// The kinds the API server says are cluster-scoped.
fn cluster_scoped_kinds() -> BTreeSet<String> {
    let out = stdout_of(&control_plane().kubectl(
        Persona::Admin,
        &["api-resources", "--namespaced=false", "--no-headers"],
        None,
    ));
    out.lines()
        .filter_map(|line| line.split_whitespace().last().map(String::from))
        .collect()
}

#[tokio::test]
async fn the_manifests_render_a_hardened_highly_available_install() {
    let _serial = exclusive_cluster().await;
    let objects = render("manifests");
    let cluster_scoped = cluster_scoped_kinds();
    assert!(cluster_scoped.contains("ClusterRole") && !cluster_scoped.contains("Deployment"));
    for object in &objects {
        let kind = object["kind"].as_str().unwrap();
        let name = object["metadata"]["name"].as_str().unwrap();
        if cluster_scoped.contains(kind) {
            assert!(object["metadata"]["namespace"].is_null(), "{kind} {name}");
        } else {
            assert_eq!(
                object["metadata"]["namespace"], SYSTEM_NAMESPACE,
                "{kind} {name} lands in {SYSTEM_NAMESPACE}"
            );
        }
    }
    let kinds: BTreeMap<&str, usize> = objects.iter().fold(BTreeMap::new(), |mut m, o| {
        *m.entry(o["kind"].as_str().unwrap()).or_default() += 1;
        m
    });
    for kind in [
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        assert_eq!(kinds.get(kind), Some(&1), "exactly one {kind}: {kinds:?}");
    }
    assert_eq!(
        kinds.get("CustomResourceDefinition"),
        Some(&5),
        "APIProduct, APIKey, APIKeyRequest, APIKeyApproval, APIKeyPolicy"
    );
    assert_eq!(
        kinds.get("ClusterRoleBinding"),
        Some(&2),
        "devportal-controller and devportal-apikey-secrets (the Secret writes, to narrow per namespace)"
    );
    assert!(
        !kinds.contains_key("ServiceMonitor") && !kinds.contains_key("Certificate"),
        "the base needs neither Prometheus Operator nor cert-manager"
    );
    find(&objects, "Namespace", SYSTEM_NAMESPACE);
    find(&objects, "ServiceAccount", "devportal");

    // The Deployment: two replicas, probes on the admin port, hardened, spread, TLS from the Secret.
    let deployment = find(&objects, "Deployment", "devportal");
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 2);
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
    let pod = &spec["template"]["spec"];
    let labels = &spec["template"]["metadata"]["labels"];
    assert_eq!(
        &spec["selector"]["matchLabels"]["app.kubernetes.io/name"],
        &labels["app.kubernetes.io/name"]
    );
    assert_eq!(pod["serviceAccountName"], "devportal");
    assert!(pod["terminationGracePeriodSeconds"].as_i64().unwrap() >= 10);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let spread: Vec<&str> = pod["topologySpreadConstraints"]
        .as_array()
        .expect("topology spread")
        .iter()
        .map(|c| c["topologyKey"].as_str().unwrap())
        .collect();
    assert!(spread.contains(&"kubernetes.io/hostname"), "{spread:?}");
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    assert_eq!(container["image"], "ghcr.io/kuadrant/devportal:0.1.0");
    let args = strings(&container["args"]);
    assert_eq!(args[0], "run");
    for flag in [
        "--tls-cert-file=/etc/devportal/tls/tls.crt",
        "--tls-key-file=/etc/devportal/tls/tls.key",
        "--self-managed-certs",
    ] {
        assert!(args.contains(&flag), "{flag} in {args:?}");
    }
    let ports: BTreeMap<&str, i64> = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["containerPort"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ports, BTreeMap::from([("https", 8443), ("http", 8080)]));
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], "http");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/livez");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], "http");
    let env: BTreeMap<&str, &Value> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap(),
                &e["valueFrom"]["fieldRef"]["fieldPath"],
            )
        })
        .collect();
    assert_eq!(env["POD_NAME"], "metadata.name");
    assert_eq!(env["POD_NAMESPACE"], "metadata.namespace");
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(strings(&security["capabilities"]["drop"]), ["ALL"]);
    for bound in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                container["resources"][bound][resource].is_string(),
                "resources.{bound}.{resource} is set"
            );
        }
    }
    assert_eq!(
        container["volumeMounts"][0]["mountPath"],
        "/etc/devportal/tls"
    );
    let volume = &pod["volumes"][0];
    assert_eq!(volume["name"], container["volumeMounts"][0]["name"]);
    assert_eq!(
        volume["emptyDir"]["medium"], "Memory",
        "self-managed mode writes the serving pair to memory, never to the node's disk"
    );

    // The Service and PDB select the pods; the Service exposes the webhook on 443.
    let service = find(&objects, "Service", "devportal");
    for selector in [
        &service["spec"]["selector"],
        &find(&objects, "PodDisruptionBudget", "devportal")["spec"]["selector"]["matchLabels"],
    ] {
        for (key, value) in selector.as_object().expect("a selector") {
            assert_eq!(&labels[key], value, "the pods carry {key}");
        }
    }
    assert_eq!(
        find(&objects, "PodDisruptionBudget", "devportal")["spec"]["minAvailable"],
        1
    );
    let service_ports: BTreeMap<&str, (&Value, &Value)> = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), (&p["port"], &p["targetPort"])))
        .collect();
    assert_eq!(service_ports["https"], (&json!(443), &json!("https")));
    assert_eq!(service_ports["http"], (&json!(8080), &json!("http")));

    // The in-cluster webhooks are webhooks/*.yaml with a service reference instead of a URL.
    for (kind, file) in [
        ("MutatingWebhookConfiguration", "webhooks/mutating.yaml"),
        ("ValidatingWebhookConfiguration", "webhooks/validating.yaml"),
    ] {
        let template: Value = serde_yaml::from_str(
            &std::fs::read_to_string(support::repo_root().join(file)).unwrap(),
        )
        .unwrap();
        let rendered = find(&objects, kind, "devportal");
        assert!(
            rendered["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].is_null(),
            "only the cert-manager component hands caBundle to cert-manager"
        );
        let (want, got) = (
            template["webhooks"].as_array().unwrap(),
            rendered["webhooks"].as_array().unwrap(),
        );
        assert_eq!(want.len(), got.len(), "{kind}");
        for (want, got) in want.iter().zip(got) {
            let mut want = want.clone();
            let mut got = got.clone();
            let url = want["clientConfig"]["url"].as_str().unwrap().to_string();
            let service = got["clientConfig"]["service"].clone();
            assert_eq!(
                service,
                json!({
                    "namespace": SYSTEM_NAMESPACE, "name": "devportal", "port": 443,
                    "path": url.trim_start_matches("${WEBHOOK_URL}"),
                }),
                "{kind} {}",
                got["name"]
            );
            assert!(got["timeoutSeconds"].as_i64().unwrap() <= 5);
            want.as_object_mut().unwrap().remove("clientConfig");
            got.as_object_mut().unwrap().remove("clientConfig");
            assert_eq!(got, want, "{kind}: same rules and policies as {file}");
        }
    }
}

#[tokio::test]
async fn the_optional_components_add_cert_manager_and_monitoring() {
    let _serial = exclusive_cluster().await;
    // An overlay as an operator would write it (kustomize wants relative paths).
    let dir = support::repo_root()
        .join("target/tmp")
        .join(format!("rbac-overlay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("kustomization.yaml"),
        "resources: [../../../manifests]\n\
         components: [../../../manifests/cert-manager, ../../../manifests/monitoring]\n\
         images:\n\
         - {name: ghcr.io/kuadrant/devportal, newName: registry.example.com/devportal, newTag: v9}\n",
    )
    .unwrap();
    let relative = dir.strip_prefix(support::repo_root()).unwrap();
    let objects = render(relative.to_str().unwrap());
    std::fs::remove_dir_all(&dir).unwrap();

    let deployment = find(&objects, "Deployment", "devportal");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "registry.example.com/devportal:v9");
    let args = strings(&container["args"]);
    assert!(!args.contains(&"--self-managed-certs"), "{args:?}");
    assert!(
        args.contains(&"--tls-cert-file=/etc/devportal/tls/tls.crt"),
        "{args:?}"
    );
    let volume = &deployment["spec"]["template"]["spec"]["volumes"][0];
    assert_eq!(volume["secret"]["secretName"], "devportal-webhook-tls");
    assert_eq!(volume["secret"]["optional"], false);

    let certificate = find(&objects, "Certificate", "devportal-webhook");
    assert_eq!(certificate["metadata"]["namespace"], SYSTEM_NAMESPACE);
    assert_eq!(certificate["spec"]["secretName"], "devportal-webhook-tls");
    assert!(
        strings(&certificate["spec"]["dnsNames"]).contains(&"devportal.devportal-system.svc"),
        "the certificate names the Service the API server dials"
    );
    let issuer = certificate["spec"]["issuerRef"]["name"].as_str().unwrap();
    find(&objects, "Issuer", issuer);
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        assert_eq!(
            find(&objects, kind, "devportal")["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            "devportal-system/devportal-webhook"
        );
    }

    let monitor = find(&objects, "ServiceMonitor", "devportal");
    assert_eq!(monitor["metadata"]["namespace"], SYSTEM_NAMESPACE);
    let service = find(&objects, "Service", "devportal");
    let port = &monitor["spec"]["endpoints"][0]["port"];
    assert!(
        service["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| &p["name"] == port),
        "the ServiceMonitor scrapes a port the Service has"
    );
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    let rules = find(&objects, "PrometheusRule", "devportal");
    assert!(
        rules["spec"]["groups"]
            .as_array()
            .is_some_and(|g| !g.is_empty())
    );
}

#[tokio::test]
async fn the_api_server_accepts_the_manifests() {
    let _serial = exclusive_cluster().await;
    // The base only: the components need CRDs (cert-manager, Prometheus Operator) this control
    // plane does not have. Strict validation refuses unknown or misspelled fields.
    let base = support::repo_root().join("manifests");
    let out = stdout_of(&control_plane().kubectl(
        Persona::Admin,
        &[
            "apply",
            "--dry-run=server",
            "--server-side",
            "--validate=strict",
            "-k",
            base.to_str().unwrap(),
        ],
        None,
    ));
    for object in [
        "deployment.apps/devportal",
        "service/devportal",
        "poddisruptionbudget.policy/devportal",
        "networkpolicy.networking.k8s.io/devportal",
        "mutatingwebhookconfiguration.admissionregistration.k8s.io/devportal",
        "validatingwebhookconfiguration.admissionregistration.k8s.io/devportal",
        "clusterrole.rbac.authorization.k8s.io/devportal-controller",
        "priorityclass.scheduling.k8s.io/devportal-critical",
    ] {
        assert!(out.contains(object), "{object} accepted:\n{out}");
    }

    // The pod devportal runs meets the "restricted" Pod Security Standard its namespace enforces:
    // create it, by dry run, in a namespace enforcing the same.
    let ns = TestNamespace::with_bindings("rbac-psa", &[]).await;
    stdout_of(&control_plane().kubectl(
        Persona::Admin,
        &[
            "label",
            "namespace",
            &ns.name,
            "pod-security.kubernetes.io/enforce=restricted",
        ],
        None,
    ));
    let rendered = render("manifests");
    assert_eq!(
        find(&rendered, "Namespace", SYSTEM_NAMESPACE)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    let template = &find(&rendered, "Deployment", "devportal")["spec"]["template"];
    let pod = |spec: &Value| {
        // Without the ServiceAccount, which exists only in devportal-system, and the
        // PriorityClass, which exists only once installed.
        let mut spec = spec.clone();
        spec.as_object_mut().unwrap().remove("serviceAccountName");
        spec.as_object_mut().unwrap().remove("priorityClassName");
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "devportal", "namespace": ns.name, "labels": template["metadata"]["labels"]},
            "spec": spec,
        })
        .to_string()
    };
    let create = |manifest: String| {
        control_plane().kubectl(
            Persona::Admin,
            &["create", "--dry-run=server", "-f", "-"],
            Some(&manifest),
        )
    };
    stdout_of(&create(pod(&template["spec"])));
    // The namespace really enforces it: the same pod allowed to escalate privileges is refused.
    let mut escalating = template["spec"].clone();
    escalating["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = json!(true);
    let refused = create(pod(&escalating));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("violates PodSecurity"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[tokio::test]
async fn the_client_ca_and_webhook_ingress_components_narrow_who_reaches_the_webhook() {
    let _serial = exclusive_cluster().await;
    let dir = support::repo_root()
        .join("target/tmp")
        .join(format!("transport-overlay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("kustomization.yaml"),
        "resources: [../../../manifests]\n\
         components: [../../../manifests/client-ca, ../../../manifests/webhook-ingress, ../../../manifests/strict-egress]\n",
    )
    .unwrap();
    let relative = dir.strip_prefix(support::repo_root()).unwrap();
    let objects = render(relative.to_str().unwrap());
    std::fs::remove_dir_all(&dir).unwrap();

    // --client-ca through its environment variable, from the mounted ConfigMap.
    let pod = &find(&objects, "Deployment", "devportal")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let env = container["env"].as_array().unwrap();
    let client_ca = env
        .iter()
        .find(|e| e["name"] == "DEVPORTAL_CLIENT_CA")
        .expect("DEVPORTAL_CLIENT_CA is set");
    let path = client_ca["value"].as_str().unwrap();
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            path.starts_with(m["mountPath"].as_str().unwrap_or("-")) && m["name"] == "client-ca"
        })
        .expect("the client CA file is mounted");
    assert_eq!(mount["readOnly"], true);
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "client-ca")
        .expect("client-ca volume");
    assert_eq!(volume["configMap"]["name"], "devportal-webhook-client-ca");
    assert!(
        strings(&container["args"]).contains(&"--self-managed-certs"),
        "the rest of the base is untouched"
    );

    // The webhook port only from the (example) API server address; the metrics rule unchanged.
    let policy = find(&objects, "NetworkPolicy", "devportal");
    let ingress = policy["spec"]["ingress"].as_array().unwrap();
    assert_eq!(ingress.len(), 2);
    assert_eq!(ingress[0]["from"][0]["ipBlock"]["cidr"], "192.0.2.10/32");
    assert_eq!(ingress[0]["ports"][0]["port"], "https");
    assert_eq!(
        ingress[1]["from"][0]["namespaceSelector"]["matchLabels"]["devportal.kuadrant.io/scrape-metrics"],
        "true"
    );
}
