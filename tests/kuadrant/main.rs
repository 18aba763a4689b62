//! devportal in a Kuadrant install as kuadrant-operator lays it out: AuthPolicies next to their
//! routes, AuthConfigs (and so API-key Secrets) in the namespace of the `Kuadrant` CR, Authorino
//! with default flags. One controller serves every test in this binary, with
//! --enforcement-namespace naming the namespace of the Kuadrant CR it creates first (devportal
//! does not follow a Kuadrant CR by itself: tests/it/shared_labels.rs).

#[path = "../support/mod.rs"]
mod support;

mod layout;
mod values;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use devportal::keys;
use devportal::resources::kuadrant::{AuthPolicy, PlanPolicy};
use devportal::resources::{APIKey, APIKeyPhase, APIProduct, ApprovalMode, RequestedBy};
use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, OwnerReference,
};
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::json;
use support::{
    Devportal, Persona, TestNamespace, authorino, control_plane, eventually, fixtures, stdout_of,
};

const WAIT: Duration = Duration::from_secs(30);

/// The namespace of the Kuadrant CR this binary starts with.
fn kuadrant_namespace() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| format!("kuadrant-{:x}", std::process::id()))
}

/// Creates `namespace` with a Kuadrant CR in it, as installing Kuadrant there would.
fn install_kuadrant(namespace: &str) {
    let manifest = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {namespace}}}\n---\n\
         apiVersion: kuadrant.io/v1beta1\nkind: Kuadrant\nmetadata: {{name: kuadrant, namespace: {namespace}}}\nspec: {{}}\n"
    );
    stdout_of(&control_plane().kubectl(Persona::Admin, &["apply", "-f", "-"], Some(&manifest)));
}

/// The controller shared by every test in this binary, started after the first Kuadrant CR and
/// under the optional secret-guard policy (manifests/secret-guard), so every test here also shows
/// that devportal writes only Secrets the policy lets it write.
fn controller() -> &'static Devportal {
    static CONTROLLER: OnceLock<Devportal> = OnceLock::new();
    CONTROLLER.get_or_init(|| {
        install_kuadrant(kuadrant_namespace());
        let policy = support::repo_root().join("manifests/secret-guard/policy.yaml");
        stdout_of(&control_plane().kubectl(
            Persona::Admin,
            &["apply", "-f", policy.to_str().unwrap()],
            None,
        ));
        Devportal::controller(
            &[
                "--lease-name",
                "kuadrant-tests",
                "--enforcement-namespace",
                kuadrant_namespace(),
            ],
            &[],
        )
    })
}

/// An AuthPolicy on `route` whose apiKey selector uses every matchExpressions operator.
fn expressive_auth_policy(route: &str) -> AuthPolicy {
    let mut policy = fixtures::auth_policy("auth", route);
    let rule = policy
        .spec
        .rules
        .as_mut()
        .unwrap()
        .authentication
        .get_mut("api-key-users")
        .unwrap();
    let expression = |key: &str, operator: &str, values: &[&str]| LabelSelectorRequirement {
        key: key.into(),
        operator: operator.into(),
        values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
    };
    rule.api_key.as_mut().unwrap().selector = LabelSelector {
        match_labels: Some([("app".to_string(), route.to_string())].into()),
        match_expressions: Some(vec![
            expression("kuadrant.io/tier-group", "In", &["paid", "trial"]),
            expression("team", "Exists", &[]),
            expression("env", "NotIn", &["dev"]),
            expression("legacy", "DoesNotExist", &[]),
        ]),
    };
    policy
}

/// A namespace laid out as a platform engineer does it with the operator: route `toystore`, its
/// PlanPolicy (gold, silver) and `auth` (enforced) in the route's namespace, and product `toys`.
async fn published(prefix: &str, auth: AuthPolicy, mode: ApprovalMode) -> (TestNamespace, Client) {
    controller();
    let ns = TestNamespace::new(prefix).await;
    let admin = control_plane().client(Persona::Admin).await;
    fixtures::platform(
        &admin,
        &ns.name,
        fixtures::plan_policy("plans", "toystore"),
        auth,
    )
    .await;
    let mut toys = fixtures::product("toys", "toystore");
    toys.spec.approval_mode = mode;
    Api::<APIProduct>::namespaced(control_plane().client(Persona::Owner).await, &ns.name)
        .create(&PostParams::default(), &toys)
        .await
        .expect("product created");
    (ns, admin)
}

async fn request_key(ns: &str, name: &str, tier: &str) -> (Api<APIKey>, String) {
    let keys = Api::<APIKey>::namespaced(control_plane().client(Persona::Consumer).await, ns);
    let mut key = fixtures::key(name, "toys", tier);
    key.spec.requested_by = Some(RequestedBy {
        user_id: "consumer".into(),
        email: None,
    });
    let created = keys.create(&PostParams::default(), &key).await.unwrap();
    (keys, created.metadata.uid.unwrap())
}

async fn wait_phase(keys: &Api<APIKey>, name: &str, phase: APIKeyPhase) -> APIKey {
    eventually(&format!("{name} to be {phase:?}"), WAIT, || async {
        keys.get(name)
            .await
            .ok()
            .filter(|k| k.status.as_ref().and_then(|s| s.phase) == Some(phase))
    })
    .await
}

/// The phase condition of `key` that holds.
fn holding(key: &APIKey) -> (String, String) {
    let c = key
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.status == "True")
        .unwrap();
    (c.reason.clone(), c.message.clone())
}

/// The enforcement Secrets of the key with `uid` in `namespace`.
async fn enforcement_in(admin: &Client, namespace: &str, uid: &str) -> Vec<Secret> {
    Api::<Secret>::namespaced(admin.clone(), namespace)
        .list(&ListParams::default().labels(&format!(
            "devportal.kuadrant.io/apikey-uid={uid},devportal.kuadrant.io/role=enforcement"
        )))
        .await
        .unwrap()
        .items
}

/// Waits for exactly one enforcement Secret of `uid` in the Kuadrant namespace passing `check`,
/// and checks it against the Authorino contract for the AuthPolicy `auth` of the key's namespace.
async fn one_enforcement(admin: &Client, uid: &str, check: impl Fn(&Secret) -> bool) -> Secret {
    let secret = eventually("one enforcement Secret as expected", WAIT, || async {
        let mut found = enforcement_in(admin, kuadrant_namespace(), uid).await;
        (found.len() == 1 && check(&found[0])).then(|| found.remove(0))
    })
    .await;
    let key = annotation(&secret, "devportal.kuadrant.io/apikey").expect("the key annotation");
    let (namespace, _) = key.split_once('/').expect("namespace/name");
    let policy = auth_policy(admin, namespace).await;
    authorino::indexed_key(&secret, &policy, kuadrant_namespace());
    secret
}

fn value(secret: &Secret) -> String {
    String::from_utf8(secret.data.as_ref().unwrap()["api_key"].0.clone()).unwrap()
}

fn annotation<'a>(secret: &'a Secret, key: &str) -> Option<&'a str> {
    secret
        .metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

async fn auth_policy(admin: &Client, ns: &str) -> AuthPolicy {
    Api::<AuthPolicy>::namespaced(admin.clone(), ns)
        .get("auth")
        .await
        .unwrap()
}
