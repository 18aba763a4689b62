//! `manifests/` as a cluster would receive it: rendered by `kubectl kustomize` and looked into.

use serde::Deserialize;
use serde_json::Value;

use super::control_plane::{control_plane, repo_root, stdout_of};
use super::personas::Persona;

/// `kubectl kustomize <dir>` (relative to the repository), as parsed objects.
pub fn render(dir: &str) -> Vec<Value> {
    let path = repo_root().join(dir);
    let yaml = stdout_of(&control_plane().kubectl(
        Persona::Admin,
        &["kustomize", path.to_str().unwrap()],
        None,
    ));
    serde_yaml::Deserializer::from_str(&yaml)
        .map(|document| Value::deserialize(document).expect("kustomize renders YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

/// The rendered object of `kind` named `name`; fails the test if there is none.
pub fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("the rendering has {kind} {name}"))
}

/// The strings of a JSON array (none for anything else).
pub fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}
