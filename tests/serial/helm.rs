//! The Helm chart charts/devportal, with the real `helm` (hack/helm): generated from manifests/ and
//! crds/ and rendering what kustomize renders, strictly linted, accepted by the API server, and
//! installed, upgraded and uninstalled in a release namespace of its own. Serial: a release creates
//! cluster-wide objects (ClusterRoles, webhook configurations with failurePolicy Fail, a
//! PriorityClass) that would collide with those other tests register.

use crate::support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::helm::{self, CHART, Release, by_kind_and_name, template};
use support::manifests::{render, strings};
use support::serial::exclusive_cluster;
use support::{Persona, SYSTEM_NAMESPACE, TestNamespace, control_plane, repo_root, stdout_of};

/// Every option on: what the kustomize components add, as chart values.
const EVERY_COMPONENT: &[&str] = &[
    "certificates.mode=cert-manager",
    "monitoring.serviceMonitor.enabled=true",
    "monitoring.prometheusRule.enabled=true",
    "monitoring.dashboard.enabled=true",
    "secretGuard.enabled=true",
    "clientCA.enabled=true",
];

/// A kustomize overlay of manifests/ with `components`, under target/tmp, rendered.
fn render_overlay(name: &str, components: &[&str]) -> Vec<Value> {
    let dir = repo_root()
        .join("target/tmp")
        .join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let components: Vec<String> = components.iter().map(|c| format!("../../../{c}")).collect();
    std::fs::write(
        dir.join("kustomization.yaml"),
        format!(
            "resources: [../../../manifests]\ncomponents: [{}]\n",
            components.join(", ")
        ),
    )
    .unwrap();
    let relative = dir.strip_prefix(repo_root()).unwrap();
    let objects = render(relative.to_str().unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
    objects
}

/// The chart's and kustomize's objects are the same, object for object (the Namespace apart:
/// Helm installs into the release namespace, which it does not own).
fn assert_same_objects(chart: &[Value], kustomize: &[Value]) {
    let chart = by_kind_and_name(chart);
    let mut kustomize = by_kind_and_name(kustomize);
    kustomize.remove(&format!("Namespace/{SYSTEM_NAMESPACE}"));
    let chart_keys: BTreeSet<&String> = chart.keys().collect();
    let kustomize_keys: BTreeSet<&String> = kustomize.keys().collect();
    assert_eq!(chart_keys, kustomize_keys, "the same objects");
    for (key, object) in &kustomize {
        assert_eq!(
            &chart[key], object,
            "{key}: the chart renders what kustomize renders"
        );
    }
}

#[tokio::test]
async fn the_chart_is_generated_from_manifests_and_crds() {
    let _serial = exclusive_cluster().await;
    let root = repo_root();
    // Regenerating changes nothing: the committed chart is what manifests/ makes of it.
    let check = std::process::Command::new(root.join("hack/chart.sh"))
        .arg("check")
        .output()
        .expect("hack/chart.sh runs");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    // The CRDs Helm installs are crds/'s, byte for byte, and all of them.
    let listed = |dir: &std::path::Path| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
            .collect()
    };
    let crds = listed(&root.join("crds"));
    assert!(crds.len() >= 4, "{crds:?}");
    assert_eq!(listed(&root.join(CHART).join("crds")), crds);
    for file in &crds {
        assert_eq!(
            std::fs::read(root.join(CHART).join("crds").join(file)).unwrap(),
            std::fs::read(root.join("crds").join(file)).unwrap(),
            "{file} in the chart is crds/{file}"
        );
    }
    // The chart's version and appVersion are the crate's.
    let chart: Value = serde_yaml::from_str(
        &std::fs::read_to_string(root.join(CHART).join("Chart.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"));
    assert_eq!(chart["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn the_chart_renders_what_kustomize_renders() {
    let _serial = exclusive_cluster().await;
    // Defaults: the base.
    assert_same_objects(&template(SYSTEM_NAMESPACE, &[]), &render("manifests"));
    // Every option: the base with every component that adds objects or changes the Deployment.
    assert_same_objects(
        &template(SYSTEM_NAMESPACE, EVERY_COMPONENT),
        &render_overlay(
            "helm-parity",
            &[
                "manifests/cert-manager",
                "manifests/monitoring",
                "manifests/secret-guard",
                "manifests/client-ca",
                "dashboards",
            ],
        ),
    );
}

#[tokio::test]
async fn the_chart_lints_strictly_and_its_schema_refuses_bad_values() {
    let _serial = exclusive_cluster().await;
    helm::run(&["lint", "--strict", CHART]);
    let mut every = vec!["lint", "--strict", CHART];
    for set in EVERY_COMPONENT {
        every.extend(["--set", set]);
    }
    helm::run(&every);
    for (set, complaint) in [
        ("replicas=0", "/replicas"),
        ("certificates.mode=vault", "/certificates/mode"),
        ("image.digest=latest", "/image/digest"),
        ("guardrails.maxKeyLifetime=1y", "/guardrails/maxKeyLifetime"),
        ("monitoring.grafana=true", "monitoring"),
    ] {
        let out = helm::output(&["template", "devportal", CHART, "--set", set]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{set} is refused");
        assert!(stderr.contains(complaint), "{set}: {stderr}");
    }
}

#[tokio::test]
async fn the_api_server_accepts_the_chart_by_server_side_dry_run() {
    let _serial = exclusive_cluster().await;
    let ns = TestNamespace::with_bindings("helm-dry-run", &[]).await;
    // What this control plane has CRDs for (no cert-manager, no Prometheus Operator).
    let yaml = helm::run(&[
        "template",
        "devportal",
        CHART,
        "--namespace",
        &ns.name,
        "--set",
        "secretGuard.enabled=true",
        "--set",
        "monitoring.dashboard.enabled=true",
        "--set",
        "clientCA.enabled=true",
        "--set",
        "clientCA.caCert=-----BEGIN CERTIFICATE-----",
    ]);
    let out = stdout_of(&control_plane().kubectl(
        Persona::Admin,
        &[
            "apply",
            "--dry-run=server",
            "--server-side",
            "--validate=strict",
            "-f",
            "-",
        ],
        Some(&yaml),
    ));
    for object in [
        "deployment.apps/devportal",
        "priorityclass.scheduling.k8s.io/devportal-critical",
        "validatingwebhookconfiguration.admissionregistration.k8s.io/devportal",
        "validatingadmissionpolicy.admissionregistration.k8s.io/devportal-secret-writes",
        "configmap/devportal-dashboard",
        "configmap/devportal-webhook-client-ca",
    ] {
        assert!(out.contains(object), "{object} accepted:\n{out}");
    }
}

/// The RBAC the bare control plane installs from manifests/rbac (the personas' ClusterRoles and
/// devportal's own), which a release would otherwise collide with: deleted while it lives,
/// applied again when dropped.
struct PreinstalledRbacSetAside;

impl PreinstalledRbacSetAside {
    fn new() -> Self {
        let rbac = repo_root().join("manifests/rbac");
        stdout_of(&control_plane().kubectl(
            Persona::Admin,
            &["delete", "-k", rbac.to_str().unwrap(), "--wait"],
            None,
        ));
        PreinstalledRbacSetAside
    }
}

impl Drop for PreinstalledRbacSetAside {
    fn drop(&mut self) {
        let rbac = repo_root().join("manifests/rbac");
        let applied = control_plane().kubectl(
            Persona::Admin,
            &[
                "apply",
                "--server-side",
                "--force-conflicts",
                "-k",
                rbac.to_str().unwrap(),
            ],
            None,
        );
        if !applied.status.success() && !std::thread::panicking() {
            panic!(
                "restoring manifests/rbac: {}",
                String::from_utf8_lossy(&applied.stderr)
            );
        }
    }
}

/// The object as the API server has it, or None if it does not exist.
fn get(kind: &str, name: &str, namespace: Option<&str>) -> Option<Value> {
    let mut args = vec!["get", kind, name, "-o", "json", "--ignore-not-found"];
    if let Some(ns) = namespace {
        args.extend(["--namespace", ns]);
    }
    let out = stdout_of(&control_plane().kubectl(Persona::Admin, &args, None));
    (!out.trim().is_empty()).then(|| serde_json::from_str(&out).unwrap())
}

/// The names of the Secrets in which Helm records the release's revisions.
fn release_records(namespace: &str) -> String {
    stdout_of(&control_plane().kubectl(
        Persona::Admin,
        &[
            "get",
            "secrets",
            "-n",
            namespace,
            "-l",
            "owner=helm",
            "-o",
            "name",
        ],
        None,
    ))
    .trim()
    .to_string()
}

fn env_value<'a>(deployment: &'a Value, name: &str) -> &'a Value {
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .map(|e| &e["value"])
        .unwrap_or_else(|| panic!("{name} is set"))
}

#[tokio::test]
async fn helm_installs_upgrades_and_uninstalls_devportal_in_its_release_namespace() {
    let _serial = exclusive_cluster().await;
    let namespace = format!("devportal-helm-{}", std::process::id());
    let _aside = PreinstalledRbacSetAside::new();
    let release = Release::install("devportal", &namespace, &[]);
    let ns = Some(namespace.as_str());

    // Installed: every object of the rendering, the namespaced ones in the release namespace and
    // everything that names the namespace naming this one.
    let rendered: Vec<Value> = template(&namespace, &[])
        .into_iter()
        .filter(|o| o["kind"] != "CustomResourceDefinition")
        .collect();
    for object in &rendered {
        let kind = object["kind"].as_str().unwrap();
        let name = object["metadata"]["name"].as_str().unwrap();
        let namespace = object["metadata"]["namespace"].as_str();
        assert!(
            get(kind, name, namespace).is_some(),
            "{kind} {name} installed"
        );
    }
    assert!(
        !release_records(&namespace).is_empty(),
        "Helm keeps the release's record in its namespace"
    );
    let deployment = get("deployment", "devportal", ns).expect("the Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["priorityClassName"], "devportal-critical");
    assert_eq!(
        pod["containers"][0]["image"],
        format!("ghcr.io/kuadrant/devportal:{}", env!("CARGO_PKG_VERSION"))
    );
    assert!(strings(&pod["containers"][0]["args"]).contains(&"--self-managed-certs"));
    assert_eq!(
        get("priorityclass", "devportal-critical", None).unwrap()["value"],
        1_000_000_000
    );
    for kind in [
        "validatingwebhookconfiguration",
        "mutatingwebhookconfiguration",
    ] {
        let configuration = get(kind, "devportal", None).unwrap();
        for webhook in configuration["webhooks"].as_array().unwrap() {
            assert_eq!(
                webhook["clientConfig"]["service"]["namespace"], namespace,
                "{kind} calls the release's Service"
            );
        }
    }
    for binding in ["devportal-controller", "devportal-apikey-secrets"] {
        let binding = get("clusterrolebinding", binding, None).unwrap();
        assert_eq!(binding["subjects"][0]["namespace"], namespace);
    }
    assert!(get("rolebinding", "devportal", ns).is_some());
    assert!(
        get("role", "devportal", Some(SYSTEM_NAMESPACE)).is_none(),
        "nothing lands in {SYSTEM_NAMESPACE}"
    );

    // Upgraded with other values: the objects follow them, and what is switched off goes.
    release.upgrade(&[
        "replicas=3",
        "priorityClass.create=false",
        "priorityClassName=system-cluster-critical",
        "networkPolicy.enabled=false",
        "guardrails.maxKeysPerUserPerProduct=7",
        "image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ]);
    let deployment = get("deployment", "devportal", ns).expect("the Deployment");
    assert_eq!(deployment["spec"]["replicas"], 3);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["priorityClassName"], "system-cluster-critical");
    assert_eq!(
        pod["containers"][0]["image"],
        "ghcr.io/kuadrant/devportal@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    );
    assert_eq!(
        env_value(&deployment, "DEVPORTAL_MAX_KEYS_PER_USER_PER_PRODUCT"),
        "7"
    );
    assert!(get("networkpolicy", "devportal", ns).is_none());
    assert!(get("priorityclass", "devportal-critical", None).is_none());

    // Uninstalled: nothing of the release is left but the CRDs (Helm never deletes those).
    let out = release.uninstall();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for object in &rendered {
        let kind = object["kind"].as_str().unwrap();
        let name = object["metadata"]["name"].as_str().unwrap();
        let namespace = object["metadata"]["namespace"].as_str();
        assert!(
            get(kind, name, namespace).is_none(),
            "{kind} {name} removed"
        );
    }
    assert_eq!(
        release_records(&namespace),
        "",
        "Helm's release records are gone too"
    );
    for crd in [
        "apikeys",
        "apiproducts",
        "apikeyrequests",
        "apikeyapprovals",
    ] {
        assert!(
            get(
                "customresourcedefinition",
                &format!("{crd}.devportal.kuadrant.io"),
                None
            )
            .is_some(),
            "the {crd} CRD stays"
        );
    }
}
