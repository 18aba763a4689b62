//! The `kubectl-devportal` binary as a user runs it: with a persona's kubeconfig, or with a
//! kubeconfig of its own for a user the admin impersonates (an owner bound in one namespace only).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_yaml::Value;

use super::control_plane::control_plane_with_devportal;
use super::personas::Persona;

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
    let mut config: Value = serde_yaml::from_str(&admin).expect("kubeconfig is YAML");
    let admin_user = config["users"][0].clone();
    let cluster = config["clusters"][0]["name"].clone();
    let mut impersonated = admin_user.clone();
    impersonated["name"] = user.into();
    impersonated["user"]["as"] = user.into();
    impersonated["user"]["as-groups"] = serde_yaml::from_str("[system:authenticated]").unwrap();
    let context: Value = serde_yaml::from_str(&format!(
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
