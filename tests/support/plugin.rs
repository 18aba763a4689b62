//! The `kubectl-devportal` binary as a user runs it: with a persona's kubeconfig, or with a
//! kubeconfig of its own for a user the admin impersonates (an owner bound in one namespace only);
//! and the setting of tests/it/kubectl_plugin.rs: a manual product, its owner and a consumer.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use devportal::resources::{APIProduct, ApprovalMode};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use serde_json::Value;

use super::control_plane::control_plane_with_devportal;
use super::fixtures;
use super::namespaces::TestNamespace;
use super::personas::Persona;
use super::waits::eventually;

/// The plugin binary cargo built for this test run.
pub const BINARY: &str = env!("CARGO_BIN_EXE_kubectl-devportal");

/// Runs the plugin with `kubeconfig`, stdout and stderr piped (so stdout is not a terminal).
pub fn run_with(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new(BINARY)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("kubectl-devportal runs")
}

/// Runs the plugin as `persona`.
pub fn run(persona: Persona, args: &[&str]) -> Output {
    run_with(&control_plane_with_devportal().kubeconfig(persona), args)
}

/// Stdout of a run that must succeed.
pub fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "kubectl-devportal failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 stdout")
}

/// Stderr of a run that must fail (non-zero exit, nothing on stdout).
pub fn failed(output: Output) -> String {
    assert!(
        !output.status.success(),
        "kubectl-devportal unexpectedly succeeded: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(output.status.code(), Some(1), "the exit code of a refusal");
    assert!(
        output.stdout.is_empty(),
        "a failure prints nothing on stdout"
    );
    String::from_utf8(output.stderr).expect("UTF-8 stderr")
}

/// A kubeconfig whose current context is the admin's, plus a context named `user` in which the
/// admin impersonates `user` (group `system:authenticated`) with `namespace` as its namespace.
pub fn impersonating_kubeconfig(user: &str, namespace: &str) -> PathBuf {
    let cp = control_plane_with_devportal();
    let admin = std::fs::read_to_string(cp.kubeconfig(Persona::Admin)).expect("admin kubeconfig");
    let mut config: serde_yaml::Value = serde_yaml::from_str(&admin).expect("kubeconfig is YAML");
    let admin_user = config["users"][0].clone();
    let cluster = config["clusters"][0]["name"].clone();
    let mut impersonated = admin_user.clone();
    impersonated["name"] = user.into();
    impersonated["user"]["as"] = user.into();
    impersonated["user"]["as-groups"] = serde_yaml::from_str("[system:authenticated]").unwrap();
    let context: serde_yaml::Value = serde_yaml::from_str(&format!(
        "{{name: {user}, context: {{cluster: {}, user: {user}, namespace: {namespace}}}}}",
        cluster.as_str().unwrap()
    ))
    .unwrap();
    config["users"]
        .as_sequence_mut()
        .unwrap()
        .push(impersonated);
    config["contexts"].as_sequence_mut().unwrap().push(context);
    let path = cp
        .state_dir()
        .join(format!("kubeconfig-{user}-{namespace}"));
    std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).expect("kubeconfig written");
    path
}

/// How long the plugin tests wait for devportal to converge.
pub const WAIT: Duration = Duration::from_secs(60);
/// The owner of the product: bound with `devportal-api-owner` in the product's namespace only.
pub const OWNER: &str = "plugin-owner";

/// The product's namespace (manual product `toys`, plans discovered; owned by [`OWNER`],
/// browsable by the consumer) and the consumer's namespace.
pub async fn setting() -> (TestNamespace, TestNamespace) {
    let cp = control_plane_with_devportal();
    let products = TestNamespace::with_bindings(
        "plugin",
        &[
            ("devportal-api-owner", &[OWNER]),
            ("devportal-api-viewer", &["consumer"]),
        ],
    )
    .await;
    let consumers = TestNamespace::with_bindings(
        "plugin-consumer",
        &[("devportal-api-consumer", &["consumer"])],
    )
    .await;
    let admin = cp.client(Persona::Admin).await;
    fixtures::published_product(&admin, &admin, &products.name, ApprovalMode::Manual).await;
    let api = Api::<APIProduct>::namespaced(admin, &products.name);
    eventually(
        "toys' plans and AuthPolicy to be discovered",
        WAIT,
        || async {
            let status = api.get("toys").await.ok()?.status?;
            let auth = status.discovered_auth_scheme.is_some();
            (auth && !status.discovered_plans.is_empty()).then_some(())
        },
    )
    .await;
    (products, consumers)
}

/// `text` parsed as JSON; fails the test with the text otherwise.
pub fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The APIKey name in the output of `request`: `apikey/<name> created ...`.
pub fn created_name(stdout: &str) -> String {
    let first = stdout.lines().next().unwrap_or_default();
    let name = first
        .strip_prefix("apikey/")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no apikey/<name> in {stdout:?}"));
    name.to_string()
}

/// The inbox as the owner lists it with `--all -o json`, until `check` finds what it wants.
pub async fn inbox_until<T>(
    kubeconfig: &std::path::Path,
    what: &str,
    check: impl Fn(&[Value]) -> Option<T>,
) -> T {
    eventually(what, WAIT, || async {
        let out = run_with(
            kubeconfig,
            &["--context", OWNER, "requests", "--all", "-o", "json"],
        );
        let listed = json(&ok(out));
        check(listed["items"].as_array()?)
    })
    .await
}

/// The APIKeyRequest of key `key` among `items`.
pub fn request_of<'a>(items: &'a [Value], key: &str) -> Option<&'a Value> {
    items.iter().find(|r| r["spec"]["apiKeyRef"]["name"] == key)
}

/// Whether condition `type_` of the object is True.
pub fn condition_holds(request: &Value, type_: &str) -> bool {
    request["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == type_ && c["status"] == "True")
}

/// Lets the consumer create APIKeyApprovals in `ns` (as a confused team might grant), so that
/// what stops them approving is the webhook's check of `approve` on the product.
pub async fn consumer_may_create_approvals(ns: &str) {
    let admin = control_plane_with_devportal().client(Persona::Admin).await;
    let role = Role {
        metadata: ObjectMeta {
            name: Some("approval-creator".into()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec!["devportal.kuadrant.io".into()]),
            resources: Some(vec!["apikeyapprovals".into(), "apikeyrequests".into()]),
            verbs: vec!["create".into(), "get".into(), "list".into()],
            ..PolicyRule::default()
        }]),
    };
    Api::<Role>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &role)
        .await
        .expect("role created");
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some("approval-creator".into()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: "approval-creator".into(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "User".into(),
            name: "consumer".into(),
            namespace: None,
        }]),
    };
    Api::<RoleBinding>::namespaced(admin, ns)
        .create(&PostParams::default(), &binding)
        .await
        .expect("role binding created");
}
