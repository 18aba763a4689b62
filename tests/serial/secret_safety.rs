//! The controller's handling of Secrets, attacked through the real API server: enforcement Secrets
//! orphaned past the finalizer, or restored from a backup, are removed; a re-created namesake key
//! adopts nothing; the consumer's own Secret (`spec.secretRef`) is followed as it changes and
//! revokes the key when it goes; brought values must be long, printable and nobody else's.
//!
//! Each test starts its own controller (one Lease, short timings) and they run one at a time, as
//! some stop the controller to act behind its back.

use crate::support;

use std::time::{Duration, Instant};

use devportal::names::{API_KEY_DATA, APIKEY_UID_LABEL, DEFAULT_KUADRANT_NAMESPACE, ROLE_LABEL};
use devportal::resources::{APIKey, APIKeyPhase, ApprovalMode, LocalSecretRef};
use devportal::secrets::Role;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use support::secrets::{api_key, secrets_of};
use support::serial::exclusive_cluster;
use support::{Devportal, Persona, TestNamespace, authorino, control_plane, eventually, fixtures};

const WAIT: Duration = Duration::from_secs(60);

/// This binary's controller: one Lease, short timings so a successor takes over quickly.
fn start_controller() -> Devportal {
    Devportal::controller(
        &[
            "--lease-name",
            "secret-safety",
            "--lease-duration",
            "4s",
            "--lease-renew-deadline",
            "3s",
            "--lease-retry-period",
            "1s",
        ],
        &[],
    )
}

/// Stops `controller` as an upgrade or a drained node would (it releases the Lease).
fn stop(mut controller: Devportal) {
    controller.terminate(Duration::from_secs(20));
}

/// A fresh namespace with the usual published product in `mode`, where both consumers may also
/// write Secrets (their own namespace, as consumers who bring their keys have it).
async fn namespace(prefix: &str, mode: ApprovalMode) -> (TestNamespace, Client) {
    let admin = control_plane().client(Persona::Admin).await;
    let writer = ClusterRole {
        metadata: ObjectMeta {
            name: Some("secret-safety-secret-writer".into()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["secrets".into()]),
            verbs: [
                "get", "list", "watch", "create", "update", "patch", "delete",
            ]
            .map(String::from)
            .to_vec(),
            ..PolicyRule::default()
        }]),
        ..ClusterRole::default()
    };
    Api::<ClusterRole>::all(admin.clone())
        .patch(
            "secret-safety-secret-writer",
            &PatchParams::apply("secret-safety-test").force(),
            &Patch::Apply(&writer),
        )
        .await
        .expect("secret writer role");
    let ns = TestNamespace::with_bindings(
        prefix,
        &[
            ("devportal-api-owner", &["owner"]),
            ("devportal-api-consumer", &["consumer", "consumer2"]),
            ("secret-safety-secret-writer", &["consumer", "consumer2"]),
        ],
    )
    .await;
    let owner = control_plane().client(Persona::Owner).await;
    fixtures::published_product(&admin, &owner, &ns.name, mode).await;
    (ns, admin)
}

async fn as_persona<K>(persona: Persona, ns: &str) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    Api::namespaced(control_plane().client(persona).await, ns)
}

/// Creates the key `name` as `persona` (requestedBy stamped as the webhook would).
async fn request(persona: Persona, ns: &str, name: &str, own: Option<&str>) -> Api<APIKey> {
    let keys = as_persona::<APIKey>(persona, ns).await;
    let mut key = fixtures::requested_key(name, "toys", "gold");
    key.spec.requested_by.as_mut().unwrap().user_id = persona.name().into();
    key.spec.secret_ref = own.map(|name| LocalSecretRef { name: name.into() });
    keys.create(&PostParams::default(), &key).await.unwrap();
    keys
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

/// The reason and message of the phase condition that holds.
fn holding(key: &APIKey) -> (String, String) {
    let status = key.status.as_ref().unwrap();
    let c = status
        .conditions
        .iter()
        .find(|c| c.status == "True")
        .unwrap();
    (c.reason.clone(), c.message.clone())
}

/// The enforcement Secrets carrying `uid`, wherever their annotation points.
async fn enforcement_of(admin: &Client, uid: &str) -> Vec<Secret> {
    Api::<Secret>::namespaced(admin.clone(), DEFAULT_KUADRANT_NAMESPACE)
        .list(&ListParams::default().labels(&format!(
            "{APIKEY_UID_LABEL}={uid},{ROLE_LABEL}={}",
            Role::Enforcement.as_str()
        )))
        .await
        .unwrap()
        .items
}

/// Waits for exactly one enforcement Secret of `uid` holding `value` and returns it.
async fn enforced_with(admin: &Client, uid: &str, value: &str) -> Secret {
    eventually("the enforcement Secret to hold the value", WAIT, || async {
        let mut found = enforcement_of(admin, uid).await;
        (found.len() == 1 && api_key(&found[0]) == value).then(|| found.remove(0))
    })
    .await
}

async fn no_enforcement(admin: &Client, uid: &str, what: &str) {
    eventually(what, WAIT, || async {
        enforcement_of(admin, uid).await.is_empty().then_some(())
    })
    .await;
}

/// The enforcement Secret as a backup holds it, ready to be restored.
fn backup(secret: &Secret) -> Secret {
    let mut copy = secret.clone();
    copy.metadata = ObjectMeta {
        name: copy.metadata.name.clone(),
        namespace: copy.metadata.namespace.clone(),
        labels: copy.metadata.labels.clone(),
        annotations: copy.metadata.annotations.clone(),
        ..ObjectMeta::default()
    };
    copy
}

fn own_secret(name: &str, value: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        data: Some(
            [(
                API_KEY_DATA.to_string(),
                ByteString(value.as_bytes().to_vec()),
            )]
            .into(),
        ),
        ..Secret::default()
    }
}

/// Replaces the data of the consumer's Secret `name` with `value`.
async fn put_value(secrets: &Api<Secret>, name: &str, value: &str) {
    let encoded = ByteString(value.as_bytes().to_vec());
    secrets
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {API_KEY_DATA: encoded}})),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn orphaned_enforcement_secrets_are_removed_and_a_namesake_adopts_nothing() {
    let _serial = exclusive_cluster().await;
    let (ns, admin) = namespace("orphan", ApprovalMode::Automatic).await;
    let controller = start_controller();
    let keys = request(Persona::Consumer, &ns.name, "mine", None).await;
    let first = wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    let old_uid = first.metadata.uid.clone().unwrap();
    let old = eventually("the first enforcement Secret", WAIT, || async {
        enforcement_of(&admin, &old_uid).await.pop()
    })
    .await;
    let old_value = api_key(&old);

    // While devportal is down (an upgrade), an admin forces the key away past the finalizer.
    stop(controller);
    let admin_keys = Api::<APIKey>::namespaced(admin.clone(), &ns.name);
    admin_keys
        .patch(
            "mine",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    admin_keys
        .delete("mine", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the key to be gone", WAIT, || async {
        admin_keys
            .get_opt("mine")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(
        enforcement_of(&admin, &old_uid).await.len(),
        1,
        "orphaned: nothing removed it while devportal was down"
    );
    // The consumer asks again under the same name, hoping to inherit the old Secret.
    request(Persona::Consumer, &ns.name, "mine", None).await;

    let _controller = start_controller();
    no_enforcement(&admin, &old_uid, "the orphan to be removed at start").await;
    let second = wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    let new_uid = second.metadata.uid.clone().unwrap();
    assert_ne!(new_uid, old_uid);
    let copy = eventually("the new consumer copy", WAIT, || async {
        let secrets = secrets_of(&admin, &ns.name, "mine").await;
        let copy = secrets
            .iter()
            .find(|(role, s)| {
                role == Role::Consumer.as_str()
                    && s.metadata.name.as_deref() == Some(&format!("mine-{new_uid}"))
            })?
            .1
            .clone();
        Some(copy)
    })
    .await;
    let new_value = api_key(&copy);
    assert_ne!(new_value, old_value, "the namesake got a value of its own");
    enforced_with(&admin, &new_uid, &new_value).await;

    // A backup of the old Secret is restored while devportal runs: removed again on its event.
    let enforcement_api = Api::<Secret>::namespaced(admin.clone(), DEFAULT_KUADRANT_NAMESPACE);
    enforcement_api
        .create(&PostParams::default(), &backup(&old))
        .await
        .unwrap();
    no_enforcement(&admin, &old_uid, "the restored orphan to be removed").await;
    let current = keys.get("mine").await.unwrap();
    assert_eq!(current.status.unwrap().phase, Some(APIKeyPhase::Approved));
    enforced_with(&admin, &new_uid, &new_value).await;
}

#[tokio::test]
async fn enforcement_secrets_of_keys_that_are_not_approved_are_removed() {
    let _serial = exclusive_cluster().await;
    let (ns, admin) = namespace("unapproved", ApprovalMode::Manual).await;
    let controller = start_controller();
    let keys = request(Persona::Consumer, &ns.name, "mine", None).await;
    wait_phase(&keys, "mine", APIKeyPhase::Pending).await;
    let owner = as_persona::<APIKey>(Persona::Owner, &ns.name).await;
    let review = |approved: bool| json!({"spec": {"approval": {"approved": approved, "reviewedBy": "owner", "reason": "review"}}});
    owner
        .patch("mine", &PatchParams::default(), &Patch::Merge(review(true)))
        .await
        .unwrap();
    let approved = wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    let uid = approved.metadata.uid.clone().unwrap();
    let enforced = eventually("the enforcement Secret", WAIT, || async {
        enforcement_of(&admin, &uid).await.pop()
    })
    .await;

    // Denied while devportal is down: the Secret goes as soon as it is back.
    stop(controller);
    owner
        .patch(
            "mine",
            &PatchParams::default(),
            &Patch::Merge(review(false)),
        )
        .await
        .unwrap();
    assert_eq!(enforcement_of(&admin, &uid).await.len(), 1);
    let _controller = start_controller();
    wait_phase(&keys, "mine", APIKeyPhase::Denied).await;
    no_enforcement(
        &admin,
        &uid,
        "the rejected key's Secret to be removed at start",
    )
    .await;

    // A backup of it restored later is removed on its event.
    Api::<Secret>::namespaced(admin.clone(), DEFAULT_KUADRANT_NAMESPACE)
        .create(&PostParams::default(), &backup(&enforced))
        .await
        .unwrap();
    no_enforcement(&admin, &uid, "the restored Secret to be removed").await;
}

#[tokio::test]
async fn the_consumers_own_secret_is_followed_and_revokes_the_key_when_it_goes() {
    let _serial = exclusive_cluster().await;
    let (ns, admin) = namespace("follow", ApprovalMode::Automatic).await;
    let _controller = start_controller();
    let secrets = as_persona::<Secret>(Persona::Consumer, &ns.name).await;
    let first = "first-value-of-my-own-0123456789abcdef";
    secrets
        .create(&PostParams::default(), &own_secret("own", first))
        .await
        .unwrap();
    let keys = request(Persona::Consumer, &ns.name, "byo", Some("own")).await;
    let key = wait_phase(&keys, "byo", APIKeyPhase::Approved).await;
    let uid = key.metadata.uid.clone().unwrap();
    enforced_with(&admin, &uid, first).await;

    // The consumer rotates the value: the new one is enforced, the old one no longer.
    let second = "second-value-of-my-own-0123456789abcdef";
    let rotated = Instant::now();
    put_value(&secrets, "own", second).await;
    let enforced = enforced_with(&admin, &uid, second).await;
    println!(
        "a rotated value was enforced {:?} after the write",
        rotated.elapsed()
    );
    let policy =
        Api::<devportal::resources::kuadrant::AuthPolicy>::namespaced(admin.clone(), &ns.name)
            .get("auth")
            .await
            .unwrap();
    assert_eq!(
        authorino::indexed_key(&enforced, &policy, DEFAULT_KUADRANT_NAMESPACE),
        second,
        "Authorino indexes the new value, and so not the old one"
    );

    // Emptied: the key is revoked.
    put_value(&secrets, "own", "").await;
    let failed = wait_phase(&keys, "byo", APIKeyPhase::Failed).await;
    let (reason, message) = holding(&failed);
    assert_eq!(reason, "SecretEmpty", "{message}");
    assert!(
        message.contains(&format!("Secret {}/own", ns.name)),
        "{message}"
    );
    no_enforcement(&admin, &uid, "the emptied key's Secret to be removed").await;

    // Filled again: enforced again, without any change to the key.
    let third = "third-value-of-my-own-0123456789abcdef";
    put_value(&secrets, "own", third).await;
    wait_phase(&keys, "byo", APIKeyPhase::Approved).await;
    enforced_with(&admin, &uid, third).await;

    // Deleted: revoked, the reason naming the Secret and never a value.
    secrets
        .delete("own", &DeleteParams::default())
        .await
        .unwrap();
    let failed = wait_phase(&keys, "byo", APIKeyPhase::Failed).await;
    let (reason, message) = holding(&failed);
    assert_eq!(reason, "SecretNotFound", "{message}");
    assert!(
        message.contains(&format!("Secret {}/own", ns.name)),
        "{message}"
    );
    for value in [first, second, third] {
        assert!(!message.contains(value), "{message}");
    }
    no_enforcement(&admin, &uid, "the deleted key's Secret to be removed").await;
}

#[tokio::test]
async fn brought_values_must_be_long_printable_and_nobody_elses() {
    let _serial = exclusive_cluster().await;
    let (ns, admin) = namespace("rules", ApprovalMode::Automatic).await;
    let _controller = start_controller();
    let mine = as_persona::<Secret>(Persona::Consumer, &ns.name).await;
    let theirs = as_persona::<Secret>(Persona::Consumer2, &ns.name).await;

    // Too short.
    let short = "short-but-sweet-1234";
    theirs
        .create(&PostParams::default(), &own_secret("short", short))
        .await
        .unwrap();
    let keys2 = request(Persona::Consumer2, &ns.name, "short", Some("short")).await;
    let failed = wait_phase(&keys2, "short", APIKeyPhase::Failed).await;
    let (reason, message) = holding(&failed);
    assert_eq!(reason, "KeyValueRejected", "{message}");
    assert!(message.contains("minimum of 32"), "{message}");
    assert!(!message.contains(short), "{message}");
    assert!(
        enforcement_of(&admin, failed.metadata.uid.as_deref().unwrap())
            .await
            .is_empty()
    );

    // A copy of another consumer's generated key (leaked, or guessed from a weak one).
    let keys1 = request(Persona::Consumer, &ns.name, "generated", None).await;
    let victim = wait_phase(&keys1, "generated", APIKeyPhase::Approved).await;
    let victim_uid = victim.metadata.uid.clone().unwrap();
    let copy_name = victim.status.unwrap().secret_ref.unwrap().name;
    let victims_value = api_key(&mine.get(&copy_name).await.unwrap());
    let victims_secret = enforced_with(&admin, &victim_uid, &victims_value).await;
    theirs
        .create(
            &PostParams::default(),
            &own_secret("copied", &victims_value),
        )
        .await
        .unwrap();
    request(Persona::Consumer2, &ns.name, "copycat", Some("copied")).await;
    let failed = wait_phase(&keys2, "copycat", APIKeyPhase::Failed).await;
    let (reason, message) = holding(&failed);
    assert_eq!(reason, "KeyValueInUse", "{message}");
    assert!(
        message.contains(&format!("Secret {}/copied", ns.name)),
        "{message}"
    );
    assert!(
        !message.contains(&victims_value) && !message.contains("generated"),
        "{message}"
    );
    assert!(
        enforcement_of(&admin, failed.metadata.uid.as_deref().unwrap())
            .await
            .is_empty()
    );
    let still = enforced_with(&admin, &victim_uid, &victims_value).await;
    assert_eq!(
        still.metadata.resource_version,
        victims_secret.metadata.resource_version
    );
    assert_eq!(
        keys1.get("generated").await.unwrap().status.unwrap().phase,
        Some(APIKeyPhase::Approved)
    );

    // Two brought keys with one value: the first keeps it.
    let shared = "a-value-two-consumers-chose-0123456789";
    mine.create(&PostParams::default(), &own_secret("mine", shared))
        .await
        .unwrap();
    request(Persona::Consumer, &ns.name, "first", Some("mine")).await;
    let first = wait_phase(&keys1, "first", APIKeyPhase::Approved).await;
    enforced_with(&admin, first.metadata.uid.as_deref().unwrap(), shared).await;
    theirs
        .create(&PostParams::default(), &own_secret("theirs", shared))
        .await
        .unwrap();
    request(Persona::Consumer2, &ns.name, "second", Some("theirs")).await;
    let failed = wait_phase(&keys2, "second", APIKeyPhase::Failed).await;
    assert_eq!(holding(&failed).0, "KeyValueInUse");

    // Once the value is changed to one of its own, the second key is enforced.
    let own = "a-value-only-the-second-consumer-has-42";
    put_value(&theirs, "theirs", own).await;
    let second = wait_phase(&keys2, "second", APIKeyPhase::Approved).await;
    enforced_with(&admin, second.metadata.uid.as_deref().unwrap(), own).await;
    assert_eq!(
        consumer_phase(&keys1, "first").await,
        Some(APIKeyPhase::Approved)
    );
}

async fn consumer_phase(keys: &Api<APIKey>, name: &str) -> Option<APIKeyPhase> {
    keys.get(name).await.ok()?.status?.phase
}
