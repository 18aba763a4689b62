//! The controller against the real control plane (garbage collector running): discovery, the
//! approval state machine and the two API-key Secrets. One controller process serves every test in
//! this binary; each test works in its own namespace.

use crate::support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use devportal::keys;
use devportal::names::{
    API_KEY_DATA, EXPIRES_ANNOTATION, FINALIZER, PLAN_ANNOTATION, USER_ANNOTATION,
};
use devportal::resources::kuadrant::{AuthPolicy, PlanPolicy};
use devportal::resources::{APIKey, APIKeyPhase, APIProduct, ApprovalMode, LocalSecretRef};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use support::processes::shared_controller;
use support::secrets::{annotation, api_key, consumer, enforcement, secrets_of};
use support::{Persona, TestNamespace, authorino, control_plane, eventually, fixtures};

const WAIT: Duration = Duration::from_secs(30);
/// Where enforcement Secrets go: this binary's controller runs without --enforcement-namespace
/// and no Kuadrant CR exists, so the default.
const KUADRANT_NAMESPACE: &str = "kuadrant-system";

/// A namespace with an exposed, accepted route `toystore`, a PlanPolicy (gold, silver) and an
/// enforced AuthPolicy on it, and an APIProduct `toys` in `mode`.
async fn published(prefix: &str, mode: ApprovalMode) -> (TestNamespace, Client) {
    shared_controller();
    fixtures::published_namespace(prefix, Persona::Owner, mode).await
}

/// Creates a key as the consumer, with requestedBy set as the webhook would.
async fn request_key(
    ns: &str,
    name: &str,
    tier: &str,
    customize: impl FnOnce(&mut APIKey),
) -> Api<APIKey> {
    let consumer = Api::<APIKey>::namespaced(control_plane().client(Persona::Consumer).await, ns);
    let mut key = fixtures::requested_key(name, "toys", tier);
    customize(&mut key);
    consumer
        .create(&PostParams::default(), &key)
        .await
        .expect("consumer creates a key");
    consumer
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

async fn wait_secrets(admin: &Client, ns: &str, name: &str, count: usize) -> Vec<(String, Secret)> {
    eventually(
        &format!("{count} Secret(s) for {ns}/{name}"),
        WAIT,
        || async {
            let found = secrets_of(admin, ns, name).await;
            (found.len() == count).then_some(found)
        },
    )
    .await
}

/// The key an Authorino with default flags accepts from the enforcement Secret among `secrets`,
/// serving the AuthPolicy `auth` of `ns` (see tests/support/authorino.rs).
async fn authorino_accepts(admin: &Client, ns: &str, secrets: &[(String, Secret)]) -> String {
    let policy = Api::<AuthPolicy>::namespaced(admin.clone(), ns)
        .get("auth")
        .await
        .unwrap();
    authorino::indexed_key(enforcement(secrets), &policy, KUADRANT_NAMESPACE)
}

#[tokio::test]
async fn automatic_product_approves_and_writes_both_secrets() {
    let (ns, admin) = published("auto", ApprovalMode::Automatic).await;
    let keys = request_key(&ns.name, "mine", "gold", |_| {}).await;
    let key = wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    let status = key.status.unwrap();
    assert_eq!(status.api_hostname.as_deref(), Some("toystore.example.com"));
    assert_eq!(status.limits.unwrap().daily, Some(100));
    assert_eq!(
        status
            .auth_scheme
            .unwrap()
            .credentials
            .unwrap()
            .authorization_header
            .unwrap()
            .prefix
            .as_deref(),
        Some("APIKEY")
    );
    let reference = status.secret_ref.expect("status names the consumer Secret");
    let uid = key.metadata.uid.clone().unwrap();
    assert_eq!(
        (reference.name.as_str(), reference.key.as_str()),
        (format!("mine-{uid}").as_str(), API_KEY_DATA),
        "named after the key's uid"
    );

    let secrets = wait_secrets(&admin, &ns.name, "mine", 2).await;
    let enforced = enforcement(&secrets);
    let labels = enforced.metadata.labels.as_ref().unwrap();
    assert_eq!(
        labels["app"], "toystore",
        "the AuthPolicy selector's labels"
    );
    assert_eq!(
        enforced.metadata.namespace.as_deref(),
        Some(KUADRANT_NAMESPACE),
        "the Kuadrant namespace, where the AuthConfig is, not the AuthPolicy's"
    );
    assert!(
        enforced
            .metadata
            .name
            .as_deref()
            .unwrap()
            .starts_with(&format!("apikey-{uid}-"))
    );
    let accepted = authorino_accepts(&admin, &ns.name, &secrets).await;
    assert_eq!(annotation(enforced, PLAN_ANNOTATION), Some("gold"));
    assert_eq!(annotation(enforced, USER_ANNOTATION), Some("consumer"));
    assert_eq!(annotation(enforced, EXPIRES_ANNOTATION), None);
    let copy = consumer(&secrets);
    assert_eq!(copy.metadata.name.as_deref(), Some(reference.name.as_str()));
    let owner = &copy.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.name.as_str(), owner.uid.as_str()),
        ("mine", uid.as_str())
    );
    let key_value = api_key(enforced);
    assert_eq!(accepted, key_value);
    assert_eq!(api_key(copy), key_value, "both Secrets hold the same key");
    assert!(
        key_value.starts_with("dpk_") && keys::verify(&key_value),
        "well-formed key with a valid checksum"
    );

    // The consumer reads their copy with their own RBAC.
    let readable =
        Api::<Secret>::namespaced(control_plane().client(Persona::Consumer).await, &ns.name)
            .get(&reference.name)
            .await
            .expect("the consumer reads their Secret");
    assert_eq!(api_key(&readable), key_value);

    // The key value appears nowhere but in the two Secrets.
    let key = keys.get("mine").await.unwrap();
    assert!(
        !serde_json::to_string(&key).unwrap().contains(&key_value),
        "not in the APIKey"
    );
    let events = control_plane().kubectl(
        Persona::Admin,
        &["get", "events", "-n", &ns.name, "-o", "yaml"],
        None,
    );
    let events = String::from_utf8_lossy(&events.stdout);
    assert!(
        events.contains("approves keys automatically"),
        "an Approved event: {events}"
    );
    assert!(!events.contains(&key_value), "not in Events");
    assert!(
        !shared_controller().log_text().contains(&key_value),
        "not in the controller's log"
    );
}

#[tokio::test]
async fn manual_product_waits_for_the_owner_then_reject_revokes_at_once() {
    let (ns, admin) = published("manual", ApprovalMode::Manual).await;
    let keys = request_key(&ns.name, "mine", "silver", |_| {}).await;
    let pending = wait_phase(&keys, "mine", APIKeyPhase::Pending).await;
    assert!(pending.status.unwrap().secret_ref.is_none());
    assert!(
        secrets_of(&admin, &ns.name, "mine").await.is_empty(),
        "no Secret while pending"
    );

    let owner = Api::<APIKey>::namespaced(control_plane().client(Persona::Owner).await, &ns.name);
    let review = |approved: bool| {
        json!({"spec": {"approval": {"approved": approved, "reviewedBy": "owner",
        "reviewedAt": Timestamp::now().to_string(), "reason": if approved { "welcome" } else { "abuse" }}}})
    };
    owner
        .patch("mine", &PatchParams::default(), &Patch::Merge(review(true)))
        .await
        .expect("the owner approves");
    let approved = wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    assert_eq!(
        approved.status.unwrap().reviewed_by.as_deref(),
        Some("owner")
    );
    let secrets = wait_secrets(&admin, &ns.name, "mine", 2).await;
    assert_eq!(
        annotation(enforcement(&secrets), PLAN_ANNOTATION),
        Some("silver")
    );
    authorino_accepts(&admin, &ns.name, &secrets).await;

    owner
        .patch(
            "mine",
            &PatchParams::default(),
            &Patch::Merge(review(false)),
        )
        .await
        .expect("the owner rejects");
    let rejected_at = Instant::now();
    let left = wait_secrets(&admin, &ns.name, "mine", 1).await;
    println!(
        "enforcement Secret gone {:?} after the rejection was written",
        rejected_at.elapsed()
    );
    assert_eq!(
        api_key(consumer(&left)),
        api_key(consumer(&secrets)),
        "the consumer copy stays while the APIKey does"
    );
    let rejected = wait_phase(&keys, "mine", APIKeyPhase::Denied).await;
    let condition = rejected
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.status == "True")
        .unwrap();
    assert_eq!(condition.type_, "Denied");
    assert!(
        condition
            .message
            .starts_with("denied by owner: abuse; not enforced meanwhile"),
        "{}",
        condition.message
    );
}

#[tokio::test]
async fn tier_change_replaces_the_enforcement_secret_and_keeps_the_key() {
    let (ns, admin) = published("tier", ApprovalMode::Automatic).await;
    let keys = request_key(&ns.name, "mine", "gold", |_| {}).await;
    wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    let before = wait_secrets(&admin, &ns.name, "mine", 2).await;
    keys.patch(
        "mine",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"planTier": "silver"}})),
    )
    .await
    .unwrap();
    let after = eventually("the plan annotation to follow the tier", WAIT, || async {
        let secrets = secrets_of(&admin, &ns.name, "mine").await;
        (secrets.len() == 2 && annotation(enforcement(&secrets), PLAN_ANNOTATION) == Some("silver"))
            .then_some(secrets)
    })
    .await;
    assert_eq!(
        api_key(enforcement(&after)),
        api_key(enforcement(&before)),
        "same key, new tier"
    );
    assert_ne!(
        enforcement(&after).metadata.uid,
        enforcement(&before).metadata.uid,
        "a new Secret object, which Authorino indexes afresh"
    );
    assert_eq!(
        consumer(&after).metadata.uid,
        consumer(&before).metadata.uid,
        "the consumer copy is untouched"
    );
    authorino_accepts(&admin, &ns.name, &after).await;
    let key = eventually("limits of the new tier", WAIT, || async {
        keys.get("mine").await.ok().filter(|k| {
            k.status
                .as_ref()
                .and_then(|s| s.limits.as_ref())
                .and_then(|l| l.daily)
                == Some(10)
        })
    })
    .await;
    assert_eq!(key.status.unwrap().phase, Some(APIKeyPhase::Approved));
}

#[tokio::test]
async fn expiry_is_acted_on_at_expires_at() {
    let (ns, admin) = published("expiry", ApprovalMode::Automatic).await;
    // The apiserver keeps whole seconds.
    let expires =
        Timestamp::from_second((Timestamp::now() + SignedDuration::from_secs(4)).as_second())
            .unwrap();
    let keys = request_key(&ns.name, "short", "gold", |k| {
        k.spec.expires_at = Some(Time(expires))
    })
    .await;
    wait_phase(&keys, "short", APIKeyPhase::Approved).await;
    let secrets = wait_secrets(&admin, &ns.name, "short", 2).await;
    authorino_accepts(&admin, &ns.name, &secrets).await;
    assert_eq!(
        annotation(enforcement(&secrets), EXPIRES_ANNOTATION),
        Some(expires.to_string().as_str())
    );
    wait_phase(&keys, "short", APIKeyPhase::Expired).await;
    let lag = Timestamp::now().duration_since(expires);
    let left = wait_secrets(&admin, &ns.name, "short", 1).await;
    assert_eq!(left[0].0, "consumer", "only the enforcement Secret goes");
    println!(
        "expired {lag:?} after expiresAt, Secrets gone {:?} after expiresAt",
        Timestamp::now().duration_since(expires)
    );
    assert!(lag.is_positive(), "never before expiresAt");
}

#[tokio::test]
async fn deleting_the_product_fails_its_keys_and_withdraws_their_enforcement() {
    let (ns, admin) = published("gone", ApprovalMode::Automatic).await;
    let keys = request_key(&ns.name, "mine", "gold", |_| {}).await;
    wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    wait_secrets(&admin, &ns.name, "mine", 2).await;
    Api::<APIProduct>::namespaced(control_plane().client(Persona::Owner).await, &ns.name)
        .delete("toys", &DeleteParams::default())
        .await
        .unwrap();
    let failed = wait_phase(&keys, "mine", APIKeyPhase::Failed).await;
    let status = failed.status.unwrap();
    let condition = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Failed")
        .unwrap();
    assert_eq!(condition.reason, "ProductNotFound");
    assert!(
        condition.message.contains("not enforced meanwhile"),
        "{}",
        condition.message
    );
    let kept = status.secret_ref.expect("the consumer copy is still named");
    let left = wait_secrets(&admin, &ns.name, "mine", 1).await;
    assert_eq!(
        (left[0].0.as_str(), left[0].1.metadata.name.as_deref()),
        ("consumer", Some(kept.name.as_str())),
        "enforcement withdrawn, the key's value kept"
    );
}

#[tokio::test]
async fn removing_a_tier_from_the_plan_policy_fails_its_keys() {
    let (ns, admin) = published("plans", ApprovalMode::Automatic).await;
    let gold = request_key(&ns.name, "gold-key", "gold", |_| {}).await;
    request_key(&ns.name, "silver-key", "silver", |_| {}).await;
    wait_phase(&gold, "gold-key", APIKeyPhase::Approved).await;
    wait_phase(&gold, "silver-key", APIKeyPhase::Approved).await;
    Api::<PlanPolicy>::namespaced(admin.clone(), &ns.name)
        .patch(
            "plans",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"plans": [
                {"tier": "silver", "limits": {"daily": 10}}
            ]}})),
        )
        .await
        .unwrap();
    let failed = wait_phase(&gold, "gold-key", APIKeyPhase::Failed).await;
    let message = &failed
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Failed")
        .unwrap()
        .message;
    assert!(
        message.contains("tier \"gold\" is not offered") && message.contains("offered: silver"),
        "{message}"
    );
    let left = wait_secrets(&admin, &ns.name, "gold-key", 1).await;
    assert_eq!(left[0].0, "consumer", "enforcement withdrawn, value kept");
    assert_eq!(
        wait_phase(&gold, "silver-key", APIKeyPhase::Approved)
            .await
            .spec
            .plan_tier,
        "silver"
    );
    wait_secrets(&admin, &ns.name, "silver-key", 2).await;
    let product = Api::<APIProduct>::namespaced(admin.clone(), &ns.name)
        .get("toys")
        .await
        .unwrap();
    assert_eq!(
        product.status.unwrap().plan_tiers.as_deref(),
        Some("silver")
    );
}

#[tokio::test]
async fn all_namespaces_rule_also_puts_the_secret_in_the_enforcement_namespace() {
    let (ns, admin) = published("allns", ApprovalMode::Automatic).await;
    Api::<AuthPolicy>::namespaced(admin.clone(), &ns.name)
        .patch(
            "auth",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"rules": {"authentication": {
                "api-key-users": {"apiKey": {"allNamespaces": true}}
            }}}})),
        )
        .await
        .unwrap();
    eventually("the product to see allNamespaces", WAIT, || async {
        let product = Api::<APIProduct>::namespaced(admin.clone(), &ns.name)
            .get("toys")
            .await
            .ok()?;
        let scheme = product.status?.discovered_auth_scheme?;
        scheme.authentication["api-key-users"]
            .api_key
            .as_ref()?
            .all_namespaces
            .then_some(())
    })
    .await;
    let keys = request_key(&ns.name, "mine", "gold", |_| {}).await;
    wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    let secrets = wait_secrets(&admin, &ns.name, "mine", 2).await;
    assert_eq!(
        enforcement(&secrets).metadata.namespace.as_deref(),
        Some(KUADRANT_NAMESPACE)
    );
    authorino_accepts(&admin, &ns.name, &secrets).await;
    assert_eq!(
        consumer(&secrets).metadata.namespace.as_deref(),
        Some(ns.name.as_str())
    );
}

#[tokio::test]
async fn deleting_the_key_removes_both_secrets() {
    let (ns, admin) = published("delete", ApprovalMode::Automatic).await;
    let keys = request_key(&ns.name, "mine", "gold", |_| {}).await;
    let key = wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    assert!(
        key.metadata
            .finalizers
            .unwrap()
            .contains(&FINALIZER.to_string())
    );
    wait_secrets(&admin, &ns.name, "mine", 2).await;
    keys.delete("mine", &DeleteParams::default()).await.unwrap();
    wait_secrets(&admin, &ns.name, "mine", 0).await;
    eventually("the key to be gone", WAIT, || async {
        keys.get_opt("mine").await.unwrap().is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn secrets_deleted_behind_the_controllers_back_come_back_with_the_same_key() {
    let (ns, admin) = published("restore", ApprovalMode::Automatic).await;
    let keys = request_key(&ns.name, "mine", "gold", |_| {}).await;
    wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    let original = api_key(enforcement(
        &wait_secrets(&admin, &ns.name, "mine", 2).await,
    ));
    let copy_name = keys
        .get("mine")
        .await
        .unwrap()
        .status
        .unwrap()
        .secret_ref
        .unwrap()
        .name;
    let secrets = Api::<Secret>::namespaced(admin.clone(), &ns.name);
    secrets
        .delete(&copy_name, &DeleteParams::default())
        .await
        .unwrap();
    let restored = eventually("the consumer Secret to come back", WAIT, || async {
        secrets.get_opt(&copy_name).await.unwrap()
    })
    .await;
    assert_eq!(api_key(&restored), original);
    let enforcement_name = enforcement(&secrets_of(&admin, &ns.name, "mine").await)
        .metadata
        .name
        .clone()
        .unwrap();
    let enforcement_secrets = Api::<Secret>::namespaced(admin.clone(), KUADRANT_NAMESPACE);
    enforcement_secrets
        .delete(&enforcement_name, &DeleteParams::default())
        .await
        .unwrap();
    let restored = eventually("the enforcement Secret to come back", WAIT, || async {
        enforcement_secrets
            .get_opt(&enforcement_name)
            .await
            .unwrap()
    })
    .await;
    assert_eq!(api_key(&restored), original);
}

#[tokio::test]
async fn bring_your_own_key_is_read_not_written() {
    let (ns, admin) = published("byo", ApprovalMode::Automatic).await;
    let mine = "my-own-key-value-0123456789-abcdefghij";
    let own = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("own".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            API_KEY_DATA.to_string(),
            ByteString(mine.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    };
    let keys = request_key(&ns.name, "byo", "gold", |k| {
        k.spec.secret_ref = Some(LocalSecretRef { name: "own".into() })
    })
    .await;
    // Failed for want of its Secret (a first reconcile may find the product not yet in the
    // controller's cache: ProductNotFound until it is).
    eventually("byo Failed with SecretNotFound", WAIT, || async {
        let key = keys.get("byo").await.ok()?;
        let status = key.status?;
        (status.phase == Some(APIKeyPhase::Failed)
            && status
                .conditions
                .iter()
                .any(|c| c.type_ == "Failed" && c.reason == "SecretNotFound"))
        .then_some(())
    })
    .await;
    Api::<Secret>::namespaced(admin.clone(), &ns.name)
        .create(&PostParams::default(), &own)
        .await
        .unwrap();
    keys.patch(
        "byo",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"nudge": "1"}}})),
    )
    .await
    .unwrap();
    let approved = wait_phase(&keys, "byo", APIKeyPhase::Approved).await;
    assert_eq!(approved.status.unwrap().secret_ref.unwrap().name, "own");
    let secrets = wait_secrets(&admin, &ns.name, "byo", 1).await;
    assert_eq!(api_key(enforcement(&secrets)), mine);
    assert_eq!(authorino_accepts(&admin, &ns.name, &secrets).await, mine);
    let untouched = Api::<Secret>::namespaced(admin, &ns.name)
        .get("own")
        .await
        .unwrap();
    assert!(
        untouched.metadata.labels.is_none(),
        "the consumer's own Secret is not modified"
    );
}
