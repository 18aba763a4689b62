//! The chart `charts/devportal` as Helm sees it: the `helm` built from the Go module in
//! `hack/helm` by `hack/helm.sh` (once per machine, cached in `~/.cache/devportal/helm`, never
//! taken from the system), run against the bare control plane as the admin; and a release that
//! uninstalls itself when dropped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

use super::control_plane::{control_plane, repo_root, stdout_of};
use super::personas::Persona;

/// The chart, relative to the repository.
pub const CHART: &str = "charts/devportal";

/// A `helm` command talking to the bare control plane as the admin, with its configuration,
/// cache and data under the control plane's state directory (never the user's own).
pub fn helm(args: &[&str]) -> Command {
    let cp = control_plane();
    let home = cp.state_dir().join("helm-home");
    let mut command = Command::new(helm_bin());
    command
        .args(args)
        .arg("--kubeconfig")
        .arg(cp.kubeconfig(Persona::Admin))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .current_dir(repo_root())
        .stdin(Stdio::null());
    command
}

/// Runs `helm args...`; fails the test with helm's output unless it succeeds, else its stdout.
pub fn run(args: &[&str]) -> String {
    stdout_of(&output(args))
}

/// Runs `helm args...` and returns what it did, success or not.
pub fn output(args: &[&str]) -> Output {
    helm(args).output().expect("helm runs")
}

/// `helm template` of the chart into `namespace` with `--set` values (`key=value`, as Helm
/// takes them), CRDs included, as parsed objects.
pub fn template(namespace: &str, sets: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "template",
        "devportal",
        CHART,
        "--namespace",
        namespace,
        "--include-crds",
    ];
    for set in sets {
        args.extend(["--set", set]);
    }
    parse(&run(&args))
}

/// The objects of a multi-document YAML stream.
pub fn parse(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|document| Value::deserialize(document).expect("helm renders YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

/// Objects by `Kind/name` (names are unique per kind in devportal's install).
pub fn by_kind_and_name(objects: &[Value]) -> BTreeMap<String, Value> {
    objects
        .iter()
        .map(|o| {
            let key = format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            );
            (key, o.clone())
        })
        .collect()
}

/// A Helm release of the chart in a namespace of its own (created by `--create-namespace`);
/// dropping it uninstalls the release and deletes the namespace.
pub struct Release {
    /// The release's name.
    pub name: String,
    /// The release namespace.
    pub namespace: String,
}

impl Release {
    /// `helm install` with `--set` values.
    pub fn install(name: &str, namespace: &str, sets: &[&str]) -> Self {
        let release = Release {
            name: name.to_string(),
            namespace: namespace.to_string(),
        };
        release.helm_with_values(&["install", name, CHART, "--create-namespace"], sets);
        release
    }

    /// `helm upgrade` with `--set` values (replacing the previous ones).
    pub fn upgrade(&self, sets: &[&str]) {
        self.helm_with_values(&["upgrade", &self.name, CHART], sets);
    }

    /// `helm uninstall`, waiting until the API server has removed what it deleted.
    pub fn uninstall(&self) -> Output {
        output(&[
            "uninstall",
            &self.name,
            "--namespace",
            &self.namespace,
            "--wait",
            "--timeout",
            "60s",
        ])
    }

    fn helm_with_values(&self, command: &[&str], sets: &[&str]) {
        let mut args: Vec<&str> = command.to_vec();
        args.extend(["--namespace", &self.namespace, "--timeout", "60s"]);
        for set in sets {
            args.extend(["--set", set]);
        }
        run(&args);
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        // Best effort: a test that already uninstalled gets "not found".
        let _ = self.uninstall();
        let _ = control_plane().kubectl(
            Persona::Admin,
            &["delete", "namespace", &self.namespace, "--wait=false"],
            None,
        );
    }
}

/// The `helm` binary, built first if it is missing (the build's progress goes to this process's
/// stderr).
fn helm_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| super::tools::cached_build("helm.sh"))
}
