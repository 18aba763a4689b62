//! devportal in a Kuadrant install as kuadrant-operator lays it out: AuthPolicies next to their
//! routes, AuthConfigs (and so API-key Secrets) in the namespace of the `Kuadrant` CR, Authorino
//! with default flags. One controller serves every test in this binary, with
//! --enforcement-namespace naming the namespace of the Kuadrant CR it creates first (devportal
//! does not follow a Kuadrant CR by itself: tests/wave3_labels.rs).

mod support;

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

#[tokio::test]
async fn the_operators_layout_gets_secrets_authorino_with_default_flags_indexes() {
    let (ns, admin) = published(
        "layout",
        expressive_auth_policy("toystore"),
        ApprovalMode::Automatic,
    )
    .await;
    let (keys, uid) = request_key(&ns.name, "mine", "gold").await;
    let key = wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    let secret = one_enforcement(&admin, &uid, |_| true).await;
    assert_eq!(
        secret.metadata.namespace.as_deref(),
        Some(kuadrant_namespace()),
        "the Kuadrant CR's namespace, not the route's {}",
        ns.name
    );
    let accepted = authorino::indexed_key(
        &secret,
        &auth_policy(&admin, &ns.name).await,
        kuadrant_namespace(),
    );
    let expected: BTreeMap<String, String> = [
        ("app", "toystore"),
        ("authorino.kuadrant.io/managed-by", "authorino"),
        ("kuadrant.io/tier-group", "paid"),
        ("team", "true"),
        ("devportal.kuadrant.io/managed", "true"),
        ("devportal.kuadrant.io/role", "enforcement"),
        ("devportal.kuadrant.io/apikey-uid", uid.as_str()),
        ("devportal.kuadrant.io/product-namespace", ns.name.as_str()),
        ("devportal.kuadrant.io/product", "toys"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(
        secret.metadata.labels.clone().unwrap(),
        expected,
        "In: the first value; Exists: set; NotIn and DoesNotExist: never set"
    );
    assert_eq!(
        annotation(&secret, "secret.kuadrant.io/plan-id"),
        Some("gold")
    );
    assert_eq!(
        annotation(&secret, "secret.kuadrant.io/user-id"),
        Some("consumer")
    );
    let copy_name = key.status.unwrap().secret_ref.unwrap().name;
    assert_eq!(copy_name, format!("mine-{uid}"));
    let copy = Api::<Secret>::namespaced(control_plane().client(Persona::Consumer).await, &ns.name)
        .get(&copy_name)
        .await
        .unwrap();
    assert_eq!(
        value(&copy),
        accepted,
        "the consumer reads the key Authorino accepts"
    );
    assert!(keys::verify(&accepted));

    let product = Api::<APIProduct>::namespaced(admin.clone(), &ns.name)
        .get("toys")
        .await
        .unwrap();
    let discovered = product
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "AuthPolicyDiscovered")
        .unwrap();
    assert_eq!(discovered.status, "True", "{}", discovered.message);
}

#[tokio::test]
async fn a_tier_change_replaces_the_secret_new_one_first_with_the_same_key() {
    let (ns, admin) = published(
        "tier",
        fixtures::auth_policy("auth", "toystore"),
        ApprovalMode::Automatic,
    )
    .await;
    let (keys, uid) = request_key(&ns.name, "mine", "gold").await;
    wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    let gold = one_enforcement(&admin, &uid, |_| true).await;
    let gold_name = gold.metadata.name.clone().unwrap();

    // Watch the key's enforcement Secrets to see the order of creation and deletion.
    let watched = Api::<Secret>::namespaced(admin.clone(), kuadrant_namespace());
    let config =
        watcher::Config::default().labels(&format!("devportal.kuadrant.io/apikey-uid={uid}"));
    let events = tokio::spawn(async move {
        let mut seen: Vec<(Instant, &'static str, String, Option<String>)> = Vec::new();
        let mut stream = std::pin::pin!(watcher(watched, config));
        while let Some(Ok(event)) = stream.next().await {
            let (kind, secret) = match event {
                watcher::Event::Apply(s) | watcher::Event::InitApply(s) => ("present", s),
                watcher::Event::Delete(s) => ("deleted", s),
                _ => continue,
            };
            let plan = annotation(&secret, "secret.kuadrant.io/plan-id").map(String::from);
            seen.push((Instant::now(), kind, secret.metadata.name.unwrap(), plan));
            if seen
                .iter()
                .any(|(_, kind, name, _)| *kind == "deleted" && name.starts_with("apikey-"))
            {
                return seen;
            }
        }
        seen
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    keys.patch(
        "mine",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"planTier": "silver"}})),
    )
    .await
    .unwrap();
    let silver = one_enforcement(&admin, &uid, |s| {
        annotation(s, "secret.kuadrant.io/plan-id") == Some("silver")
    })
    .await;
    assert_ne!(
        silver.metadata.uid, gold.metadata.uid,
        "a new Secret object"
    );
    assert_ne!(silver.metadata.name.as_deref(), Some(gold_name.as_str()));
    assert_eq!(value(&silver), value(&gold), "the same key");
    authorino::indexed_key(
        &silver,
        &auth_policy(&admin, &ns.name).await,
        kuadrant_namespace(),
    );

    let seen = tokio::time::timeout(WAIT, events)
        .await
        .expect("the old Secret is deleted")
        .unwrap();
    let created = seen
        .iter()
        .find(|(_, kind, _, plan)| *kind == "present" && plan.as_deref() == Some("silver"))
        .expect("the silver Secret appeared")
        .0;
    let deleted = seen
        .iter()
        .find(|(_, kind, name, _)| *kind == "deleted" && *name == gold_name)
        .expect("the gold Secret was deleted")
        .0;
    assert!(
        created <= deleted,
        "the new Secret exists before the old one goes: {seen:?}"
    );
    println!(
        "tier change: old Secret gone {:?} after the new one existed",
        deleted - created
    );
}

/// Records every deletion of Secret `name` in `ns` until the returned handle is aborted.
fn deletions_of(client: Client, ns: &str, name: &str) -> tokio::task::JoinHandle<Vec<String>> {
    let api = Api::<Secret>::namespaced(client, ns);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    tokio::spawn(async move {
        let mut deleted = Vec::new();
        let mut stream = std::pin::pin!(watcher(api, config));
        while let Some(event) = stream.next().await {
            if let Ok(watcher::Event::Delete(s)) = event {
                deleted.push(s.metadata.uid.unwrap_or_default());
            }
        }
        deleted
    })
}

async fn set_enforced(admin: &Client, ns: &str, enforced: bool) {
    let status = if enforced { "True" } else { "False" };
    Api::<AuthPolicy>::namespaced(admin.clone(), ns)
        .patch_status(
            "auth",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": [
                fixtures::true_condition("Accepted"),
                {"type": "Enforced", "status": status, "reason": "Blip", "message": "",
                 "lastTransitionTime": "2026-01-01T00:00:00Z"}
            ]}})),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn policy_blips_and_a_missing_product_keep_the_key_value() {
    let (ns, admin) = published(
        "blips",
        fixtures::auth_policy("auth", "toystore"),
        ApprovalMode::Automatic,
    )
    .await;
    let (keys, uid) = request_key(&ns.name, "mine", "gold").await;
    let key = wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    let original = value(&one_enforcement(&admin, &uid, |_| true).await);
    let copy_name = key.status.unwrap().secret_ref.unwrap().name;
    let copies = Api::<Secret>::namespaced(admin.clone(), &ns.name);
    let copy_uid = copies.get(&copy_name).await.unwrap().metadata.uid;
    let deletions = deletions_of(admin.clone(), &ns.name, &copy_name);
    let withdrawn = || async {
        eventually("the enforcement Secret to be withdrawn", WAIT, || async {
            enforcement_in(&admin, kuadrant_namespace(), &uid)
                .await
                .is_empty()
                .then_some(())
        })
        .await
    };
    let restored = |what: &'static str| {
        let admin = admin.clone();
        let uid = uid.clone();
        let original = original.clone();
        async move {
            let secret = one_enforcement(&admin, &uid, |_| true).await;
            assert_eq!(value(&secret), original, "{what}: the same key comes back");
        }
    };

    // 1. The AuthPolicy is briefly not enforced.
    set_enforced(&admin, &ns.name, false).await;
    let failed = wait_phase(&keys, "mine", APIKeyPhase::Failed).await;
    let (reason, message) = holding(&failed);
    assert_eq!(reason, "NoAPIKeyAuth");
    assert!(
        message.contains(&format!("whose value is kept in Secret {copy_name}")),
        "{message}"
    );
    withdrawn().await;
    set_enforced(&admin, &ns.name, true).await;
    wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    restored("Enforced=False and back").await;

    // 2. The PlanPolicy loses the tier for a moment.
    let plans = Api::<PlanPolicy>::namespaced(admin.clone(), &ns.name);
    plans
        .patch(
            "plans",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"plans": [
                {"tier": "silver", "limits": {"daily": 10}}
            ]}})),
        )
        .await
        .unwrap();
    wait_phase(&keys, "mine", APIKeyPhase::Failed).await;
    withdrawn().await;
    plans
        .replace("plans", &PostParams::default(), &{
            let mut p = plans.get("plans").await.unwrap();
            p.spec.plans = fixtures::plan_policy("plans", "toystore").spec.plans;
            p
        })
        .await
        .unwrap();
    wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    restored("a PlanPolicy edit").await;

    // 3. The product is deleted and created again.
    let products =
        Api::<APIProduct>::namespaced(control_plane().client(Persona::Owner).await, &ns.name);
    products
        .delete("toys", &DeleteParams::default())
        .await
        .unwrap();
    wait_phase(&keys, "mine", APIKeyPhase::Failed).await;
    withdrawn().await;
    products
        .create(
            &PostParams::default(),
            &fixtures::product("toys", "toystore"),
        )
        .await
        .unwrap();
    wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    restored("a re-created product").await;

    deletions.abort();
    let deleted = deletions.await.unwrap_or_default();
    assert!(
        deleted.is_empty(),
        "the consumer Secret was deleted: {deleted:?}"
    );
    assert_eq!(
        copies.get(&copy_name).await.unwrap().metadata.uid,
        copy_uid,
        "never replaced"
    );
}

#[tokio::test]
async fn a_selector_no_secret_can_satisfy_is_reported_on_the_product_and_its_keys() {
    let mut policy = fixtures::auth_policy("auth", "toystore");
    policy
        .spec
        .rules
        .as_mut()
        .unwrap()
        .authentication
        .get_mut("api-key-users")
        .unwrap()
        .api_key
        .as_mut()
        .unwrap()
        .selector
        .match_expressions = Some(vec![LabelSelectorRequirement {
        key: "app".into(),
        operator: "NotIn".into(),
        values: Some(vec!["toystore".into()]),
    }]);
    let (ns, admin) = published("unsat", policy, ApprovalMode::Automatic).await;
    let products = Api::<APIProduct>::namespaced(admin.clone(), &ns.name);
    let condition = eventually("AuthPolicyDiscovered to explain", WAIT, || async {
        let p = products.get("toys").await.ok()?;
        p.status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "AuthPolicyDiscovered" && c.reason == "UnsatisfiableSelector")
    })
    .await;
    assert_eq!(condition.status, "False");
    assert!(
        condition
            .message
            .contains("no value of label app meets app=toystore, app!=toystore"),
        "{}",
        condition.message
    );
    let (keys, uid) = request_key(&ns.name, "mine", "gold").await;
    // (Until the PlanPolicy reaches the caches, the key may first be Failed for its tier.)
    let failed = eventually("the key to fail for the selector", WAIT, || async {
        let key = keys.get("mine").await.ok()?;
        (key.status.as_ref()?.phase == Some(APIKeyPhase::Failed)
            && holding(&key).0 == "UnsatisfiableSelector")
            .then_some(key)
    })
    .await;
    assert!(holding(&failed).1.contains("no value of label app"));
    assert!(
        enforcement_in(&admin, kuadrant_namespace(), &uid)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_foreign_secret_at_the_consumer_name_is_never_adopted() {
    let (ns, admin) = published(
        "foreign",
        fixtures::auth_policy("auth", "toystore"),
        ApprovalMode::Manual,
    )
    .await;
    let (keys, uid) = request_key(&ns.name, "mine", "gold").await;
    wait_phase(&keys, "mine", APIKeyPhase::Pending).await;
    // Someone plants a Secret where the consumer copy will go, hoping devportal adopts it.
    let name = format!("mine-{uid}");
    let planted = Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..ObjectMeta::default()
        },
        data: Some(
            [(
                "api_key".to_string(),
                ByteString(b"planted-value-0123456789abcdef0123".to_vec()),
            )]
            .into(),
        ),
        ..Secret::default()
    };
    // Planted by someone who may write Secrets in the namespace (here the admin).
    let consumer_secrets = Api::<Secret>::namespaced(admin.clone(), &ns.name);
    let planted = consumer_secrets
        .create(&PostParams::default(), &planted)
        .await
        .unwrap();
    let owner = Api::<APIKey>::namespaced(control_plane().client(Persona::Owner).await, &ns.name);
    owner
        .patch(
            "mine",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"approval": {"approved": true, "reviewedBy": "owner"}}})),
        )
        .await
        .unwrap();
    let failed = wait_phase(&keys, "mine", APIKeyPhase::Failed).await;
    let (reason, message) = holding(&failed);
    assert_eq!(reason, "SecretConflict");
    assert!(
        message.contains(&format!("Secret {}/{name}", ns.name)),
        "{message}"
    );
    let untouched = consumer_secrets.get(&name).await.unwrap();
    assert_eq!(
        untouched.metadata.resource_version, planted.metadata.resource_version,
        "not written"
    );
    assert!(
        enforcement_in(&admin, kuadrant_namespace(), &uid)
            .await
            .is_empty(),
        "its value is never enforced"
    );

    consumer_secrets
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    keys.patch(
        "mine",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"nudge": "1"}}})),
    )
    .await
    .unwrap();
    wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    let enforced = one_enforcement(&admin, &uid, |_| true).await;
    assert_ne!(value(&enforced), "planted-value-0123456789abcdef0123");
}

#[tokio::test]
async fn drift_on_either_secret_is_restored_exactly() {
    let (ns, admin) = published(
        "drift",
        fixtures::auth_policy("auth", "toystore"),
        ApprovalMode::Automatic,
    )
    .await;
    let (keys, uid) = request_key(&ns.name, "mine", "gold").await;
    let key = wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    let original = one_enforcement(&admin, &uid, |_| true).await;
    let enforcement_api = Api::<Secret>::namespaced(admin.clone(), kuadrant_namespace());
    let name = original.metadata.name.clone().unwrap();
    enforcement_api
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": {"labels": {"sneaky": "yes"}},
                "data": {"api_key": "c3RvbGVu"}
            })),
        )
        .await
        .unwrap();
    let restored = eventually("the enforcement Secret restored", WAIT, || async {
        let s = enforcement_api.get(&name).await.ok()?;
        (s.metadata.labels == original.metadata.labels && s.data == original.data).then_some(s)
    })
    .await;
    assert_eq!(
        restored.metadata.uid, original.metadata.uid,
        "restored in place"
    );

    let copy_name = key.status.unwrap().secret_ref.unwrap().name;
    let copies = Api::<Secret>::namespaced(admin.clone(), &ns.name);
    let copy = copies.get(&copy_name).await.unwrap();
    copies
        .patch(
            &copy_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"sneaky": "yes"}}})),
        )
        .await
        .unwrap();
    eventually("the consumer Secret restored", WAIT, || async {
        let s = copies.get(&copy_name).await.ok()?;
        (s.metadata.annotations == copy.metadata.annotations).then_some(())
    })
    .await;
}

/// An enforcement or consumer Secret as devportal wrote them before names derived from uids.
fn legacy_secret(name: &str, ns: &str, role: &str, key_ref: &str, value: &str) -> Secret {
    let mut labels: BTreeMap<String, String> = [
        ("devportal.kuadrant.io/managed", "true"),
        ("devportal.kuadrant.io/role", role),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if role == "enforcement" {
        labels.insert("app".into(), "toystore".into());
        labels.insert(
            "authorino.kuadrant.io/managed-by".into(),
            "authorino".into(),
        );
    }
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            labels: Some(labels),
            annotations: Some(
                [(
                    "devportal.kuadrant.io/apikey".to_string(),
                    key_ref.to_string(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        data: Some([("api_key".to_string(), ByteString(value.as_bytes().to_vec()))].into()),
        ..Secret::default()
    }
}

#[tokio::test]
/// Straight from the oldest layout, the value is not taken: neither Secret is one devportal may
/// take a value from (a tenant could plant either, issue 27), so the key gets a new one; the old
/// enforcement Secret, outside the enforcement namespace, is left alone.
async fn an_upgrade_from_the_oldest_layout_issues_a_new_value_and_leaves_outside_secrets_alone() {
    let (ns, admin) = published(
        "upgrade",
        fixtures::auth_policy("auth", "toystore"),
        ApprovalMode::Manual,
    )
    .await;
    let (keys, uid) = request_key(&ns.name, "mine", "gold").await;
    wait_phase(&keys, "mine", APIKeyPhase::Pending).await;
    // What the previous release left: the copy `mine-apikey` owned by the key, and the
    // enforcement Secret in the AuthPolicy's namespace under its old name.
    let old_value = keys::generate("dpk").unwrap().expose().to_string();
    let key_ref = format!("{}/mine", ns.name);
    let old_enforcement = format!(
        "apikey-{}-mine-{:08x}",
        ns.name,
        crc32fast::hash(key_ref.as_bytes())
    );
    let mut copy = legacy_secret("mine-apikey", &ns.name, "consumer", &key_ref, &old_value);
    copy.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "devportal.kuadrant.io/v1alpha1".into(),
        kind: "APIKey".into(),
        name: "mine".into(),
        uid: uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]);
    let secrets = Api::<Secret>::namespaced(admin.clone(), &ns.name);
    secrets
        .create(
            &PostParams::default(),
            &legacy_secret(
                &old_enforcement,
                &ns.name,
                "enforcement",
                &key_ref,
                &old_value,
            ),
        )
        .await
        .unwrap();
    secrets.create(&PostParams::default(), &copy).await.unwrap();

    let owner = Api::<APIKey>::namespaced(control_plane().client(Persona::Owner).await, &ns.name);
    owner
        .patch(
            "mine",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"approval": {"approved": true, "reviewedBy": "owner"}}})),
        )
        .await
        .unwrap();
    let key = wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    let enforced = one_enforcement(&admin, &uid, |_| true).await;
    assert_ne!(
        value(&enforced),
        old_value,
        "a value devportal cannot vouch for"
    );
    let copy_name = key.status.unwrap().secret_ref.unwrap().name;
    assert_eq!(
        value(&secrets.get(&copy_name).await.unwrap()),
        value(&enforced)
    );
    eventually("the old consumer copy to be gone", WAIT, || async {
        secrets
            .get_opt("mine-apikey")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        secrets.get_opt(&old_enforcement).await.unwrap().is_some(),
        "a Secret outside the enforcement namespace is not devportal's to delete"
    );
}

#[tokio::test]
async fn the_secret_guard_lets_devportal_write_only_its_own_secrets() {
    controller();
    let ns = TestNamespace::new("guard").await;
    let admin = control_plane().client(Persona::Admin).await;
    let as_devportal =
        Api::<Secret>::namespaced(control_plane().client(Persona::Controller).await, &ns.name);
    let secret = |name: &str, managed: bool| Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: managed.then(|| {
                [(
                    "devportal.kuadrant.io/managed".to_string(),
                    "true".to_string(),
                )]
                .into()
            }),
            ..ObjectMeta::default()
        },
        ..Secret::default()
    };
    // The policy takes effect a moment after it is created.
    let refused = eventually(
        "the policy to refuse an unlabelled Secret",
        WAIT,
        || async {
            match as_devportal
                .create(&PostParams::default(), &secret("someone-elses", false))
                .await
            {
                Err(kube::Error::Api(status)) => Some(status),
                Ok(_) => {
                    as_devportal
                        .delete("someone-elses", &DeleteParams::default())
                        .await
                        .ok();
                    None
                }
                Err(_) => None,
            }
        },
    )
    .await;
    assert_eq!(refused.code, 403);
    assert!(
        refused
            .message
            .contains("devportal may write only Secrets labelled"),
        "{}",
        refused.message
    );
    as_devportal
        .create(&PostParams::default(), &secret("its-own", true))
        .await
        .expect("a labelled Secret is devportal's to write");
    Api::<Secret>::namespaced(admin, &ns.name)
        .create(&PostParams::default(), &secret("precious", false))
        .await
        .unwrap();
    let delete = as_devportal
        .delete("precious", &DeleteParams::default())
        .await;
    assert!(
        matches!(&delete, Err(kube::Error::Api(s)) if s.code == 403),
        "devportal may not delete another Secret: {delete:?}"
    );
    let relabel = as_devportal
        .replace("precious", &PostParams::default(), &{
            let mut s = as_devportal.get("precious").await.unwrap();
            s.metadata.labels = Some(
                [(
                    "devportal.kuadrant.io/managed".to_string(),
                    "true".to_string(),
                )]
                .into(),
            );
            s
        })
        .await;
    assert!(
        matches!(&relabel, Err(kube::Error::Api(s)) if s.code == 403),
        "nor adopt it by labelling it: {relabel:?}"
    );
}
