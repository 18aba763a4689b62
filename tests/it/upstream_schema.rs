//! Issue 28: upstream's schema is a subset of devportal's. kuadrant-operator bundles CRDs of the
//! same kinds (APIProduct, APIKey, APIKeyRequest, APIKeyApproval); a front end written against
//! them must find every field in devportal's, with the same type. The upstream field list is
//! tests/fixtures/kuadrant-operator/devportal-field-paths.txt (its header names the commit); the
//! check reads devportal's generated crds/ as shipped (a pure check of shipped files). And the
//! fields devportal fills that upstream has and devportal lacked: the AuthPolicy's rules in
//! `status.discoveredAuthScheme`, written by the controller and kept by the API server.

use std::collections::BTreeMap;

use devportal::resources::APIProduct;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use serde_yaml::Value;

use crate::support::{
    self, Persona, TestNamespace, control_plane_with_devportal, fixtures, repo_root,
};

/// The type of a schema node, named as the fixture names it.
fn type_of(node: &Value) -> String {
    if let Some(t) = node.get("type").and_then(Value::as_str) {
        return t.to_string();
    }
    let flag = |name: &str| node.get(name).and_then(Value::as_bool) == Some(true);
    if flag("x-kubernetes-int-or-string") {
        "int-or-string".into()
    } else if flag("x-kubernetes-preserve-unknown-fields") {
        "preserve-unknown".into()
    } else {
        "none".into()
    }
}

/// Every node under `node` at `path`, into `out` (path → type).
fn walk(node: &Value, path: &str, out: &mut BTreeMap<String, String>) {
    if !path.is_empty() {
        out.insert(path.to_string(), type_of(node));
    }
    if let Some(properties) = node.get("properties").and_then(Value::as_mapping) {
        for (name, child) in properties {
            walk(child, &format!("{path}.{}", name.as_str().unwrap()), out);
        }
    }
    if let Some(items) = node.get("items") {
        walk(items, &format!("{path}[]"), out);
    }
    if let Some(values) = node.get("additionalProperties").filter(|v| v.is_mapping()) {
        walk(values, &format!("{path}{{}}"), out);
    }
}

/// (kind, version, path) → type, of every CRD in devportal's crds/.
fn devportal_fields() -> BTreeMap<(String, String, String), String> {
    let mut fields = BTreeMap::new();
    let dir = repo_root().join("crds");
    for entry in std::fs::read_dir(&dir).expect("crds/") {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() == "kustomization.yaml" {
            continue;
        }
        let crd: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_string();
        for version in crd["spec"]["versions"].as_sequence().unwrap() {
            let mut out = BTreeMap::new();
            walk(&version["schema"]["openAPIV3Schema"], "", &mut out);
            let name = version["name"].as_str().unwrap().to_string();
            for (path, type_) in out {
                fields.insert((kind.clone(), name.clone(), path), type_);
            }
        }
    }
    fields
}

#[test]
fn every_field_of_kuadrant_operators_devportal_crds_is_in_devportals_with_its_type() {
    let listed = std::fs::read_to_string(
        repo_root().join("tests/fixtures/kuadrant-operator/devportal-field-paths.txt"),
    )
    .unwrap();
    let ours = devportal_fields();
    let mut checked = 0;
    let mut missing = Vec::new();
    for line in listed
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let [kind, version, path, type_]: [&str; 4] = line
            .split(' ')
            .collect::<Vec<_>>()
            .try_into()
            .unwrap_or_else(|_| panic!("not `kind version path type`: {line}"));
        checked += 1;
        match ours.get(&(kind.into(), version.into(), path.into())) {
            Some(ours) if ours == type_ => {}
            Some(ours) => {
                missing.push(format!("{kind} {path}: upstream {type_}, devportal {ours}"))
            }
            None => missing.push(format!("{kind} {path} ({type_}): absent")),
        }
    }
    assert_eq!(checked, 630, "the whole upstream list was read");
    assert!(
        missing.is_empty(),
        "{} of upstream's fields are not in devportal's CRDs as upstream types them:\n{}",
        missing.len(),
        missing.join("\n")
    );
}

#[tokio::test]
async fn a_products_discovered_auth_scheme_carries_every_section_of_the_authpolicys_rules() {
    let ns = TestNamespace::new("upstream-schema").await;
    let admin = control_plane_with_devportal().client(Persona::Admin).await;
    let mut auth = fixtures::auth_policy("auth", "toystore");
    let rules = auth.spec.rules.as_mut().unwrap();
    let gold_only = json!({"patternMatching": {"patterns": [
        {"predicate": "auth.identity.metadata.annotations['secret.kuadrant.io/plan-id'] == 'gold'"}
    ]}});
    rules
        .authorization
        .insert("gold-only".into(), gold_only.clone());
    rules.metadata.insert(
        "user".into(),
        json!({"userInfo": {"identitySource": "keys"}}),
    );
    let response = json!({"unauthenticated": {"code": 401, "message": {"value": "send a key"}}});
    rules.response = Some(response.clone());
    let authentication = rules.authentication.values_mut().next().unwrap();
    authentication.other.insert("priority".into(), json!(1));
    fixtures::platform(
        &admin,
        &ns.name,
        fixtures::plan_policy("plans", "toystore"),
        auth,
    )
    .await;
    Api::<APIProduct>::namespaced(admin.clone(), &ns.name)
        .create(
            &PostParams::default(),
            &fixtures::product("toys", "toystore"),
        )
        .await
        .expect("product created");
    let products = Api::<APIProduct>::namespaced(admin.clone(), &ns.name);
    let scheme = support::eventually(
        "the AuthPolicy's rules in status",
        support::reviews::WAIT,
        || async {
            let scheme = products
                .get("toys")
                .await
                .ok()?
                .status?
                .discovered_auth_scheme?;
            (!scheme.authorization.is_empty()).then_some(scheme)
        },
    )
    .await;
    // As the API server stored the AuthPolicy: with its CRD's defaults (`metrics`, `priority`).
    assert_eq!(
        scheme.authorization["gold-only"]["patternMatching"],
        gold_only["patternMatching"]
    );
    assert_eq!(scheme.authorization["gold-only"]["priority"], json!(0));
    assert_eq!(
        scheme.metadata["user"]["userInfo"],
        json!({"identitySource": "keys"})
    );
    let unauthenticated = &scheme.response.as_ref().unwrap()["unauthenticated"];
    assert_eq!(unauthenticated["code"], response["unauthenticated"]["code"]);
    assert_eq!(
        unauthenticated["message"],
        response["unauthenticated"]["message"]
    );
    let rule = scheme.authentication.values().next().unwrap();
    assert_eq!(
        rule.other["priority"],
        json!(1),
        "the rule's other fields are kept"
    );
    assert!(rule.api_key.is_some());
}
