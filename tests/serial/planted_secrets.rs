//! Issue 27, items 1, 7 and 8, and the upgrade: the controller's handling of Secrets attacked
//! through the real API server by tenants who may write Secrets in their own namespace.
//!
//! - A Secret planted in a tenant's namespace with devportal's enforcement marks for another
//!   tenant's key (the old name-derived layout, or the uid label) neither chooses that key's value
//!   nor is deleted, nor blocks revocation where devportal has no Secret rights.
//! - A consumer who writes another key's value, or the value from before a rotation, into their
//!   own consumer Secret does not get it enforced: the consumer Secret is restored.
//! - The orphan sweep deletes only in the enforcement namespace: a tenant's `patch` adding the
//!   marks to a Secret does not become a `delete` by devportal.
//! - A key enforced by the previous release (no MAC) keeps its value across the upgrade and
//!   across a withdrawal after it.
//!
//! devportal's Secret writes are narrowed here as docs/operator-guide.md describes: the
//! `devportal-apikey-secrets` ClusterRole is bound only in the enforcement namespace and in the
//! namespaces where keys are requested, not cluster-wide, for the length of each test (the
//! cluster-wide binding is restored when the test ends, however it ends, so the other tests of
//! tests/serial/ find the shipped RBAC). Each test starts its own controller (one Lease).

use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use devportal::keys;
use devportal::names::key_reason::KEY_VALUE_REISSUED;
use devportal::names::{
    API_KEY_DATA, APIKEY_ANNOTATION, APIKEY_UID_LABEL, AUTHORINO_DEFAULT_SECRET_SELECTOR,
    DEFAULT_KUADRANT_NAMESPACE, MANAGED_LABEL, ROLE_LABEL, ROTATION_REQUEST_ANNOTATION,
    VALUE_MAC_ANNOTATION,
};
use devportal::resources::kuadrant::AuthPolicy;
use devportal::resources::{APIKey, APIKeyPhase, ApprovalMode};
use devportal::secrets::{self, Enforcement, Role};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, RoleBinding, RoleRef, Subject};
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use support::access::{binding_in_effect, can_i};
use support::secrets::{api_key, consumer, enforcement, secrets_of};
use support::serial::exclusive_cluster;
use support::{Devportal, Persona, TestNamespace, authorino, control_plane, eventually, fixtures};

const WAIT: Duration = Duration::from_secs(60);
const ENFORCEMENT: &str = DEFAULT_KUADRANT_NAMESPACE;
/// devportal's identity, as RBAC subjects name it.
const DEVPORTAL_USER: &str = "system:serviceaccount:devportal-system:devportal";
/// What a tenant may do with Secrets in their own namespace: everything but delete.
const TENANT_SECRETS: &str = "wave3-tenant-secrets";

/// Starts this binary's controller and waits until it has discovered the product `toys` in `ns`.
async fn start_controller(admin: &Client, ns: &str) -> Devportal {
    let controller = start_controller_only();
    fixtures::product_ready(admin, ns, WAIT).await;
    controller
}

fn start_controller_only() -> Devportal {
    Devportal::controller(
        &[
            "--lease-name",
            "wave3-secrets",
            "--enforcement-namespace",
            ENFORCEMENT,
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

fn user(name: &str) -> Subject {
    Subject {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: "User".into(),
        name: name.into(),
        namespace: None,
    }
}

/// The shipped cluster-wide binding of devportal's Secret writes, restored when a test ends.
const CLUSTER_WIDE_SECRET_WRITES: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: devportal-apikey-secrets}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: devportal-apikey-secrets}
subjects:
- {kind: ServiceAccount, name: devportal, namespace: devportal-system}
";

/// While held, devportal's Secret writes are narrowed ([`narrowed_rbac`]); dropping it (at the
/// end of the test, or when it panics) binds them cluster-wide again, as shipped.
#[must_use]
struct NarrowedRbac;

impl Drop for NarrowedRbac {
    fn drop(&mut self) {
        let applied = control_plane().kubectl(
            Persona::Admin,
            &["apply", "-f", "-"],
            Some(CLUSTER_WIDE_SECRET_WRITES),
        );
        if !applied.status.success() && !std::thread::panicking() {
            panic!(
                "restoring devportal's cluster-wide Secret writes: {}",
                String::from_utf8_lossy(&applied.stderr)
            );
        }
    }
}

/// devportal's Secret writes bound only in the enforcement namespace (and, by [`namespace`],
/// where keys are requested), and the tenants' Secret role, until the returned guard is dropped.
async fn narrowed_rbac(admin: &Client) -> NarrowedRbac {
    {
        let tenant = ClusterRole {
            metadata: ObjectMeta {
                name: Some(TENANT_SECRETS.into()),
                ..ObjectMeta::default()
            },
            rules: Some(vec![PolicyRule {
                api_groups: Some(vec![String::new()]),
                resources: Some(vec!["secrets".into()]),
                verbs: ["get", "list", "watch", "create", "update", "patch"]
                    .map(String::from)
                    .to_vec(),
                ..PolicyRule::default()
            }]),
            ..ClusterRole::default()
        };
        Api::<ClusterRole>::all(admin.clone())
            .patch(
                TENANT_SECRETS,
                &PatchParams::apply("wave3-secrets").force(),
                &Patch::Apply(&tenant),
            )
            .await
            .unwrap();
        let _ = Api::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>::all(admin.clone())
            .delete("devportal-apikey-secrets", &DeleteParams::default())
            .await;
        let binding = RoleBinding {
            metadata: ObjectMeta {
                name: Some("devportal-apikey-secrets".into()),
                ..ObjectMeta::default()
            },
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "ClusterRole".into(),
                name: "devportal-apikey-secrets".into(),
            },
            subjects: Some(vec![user(DEVPORTAL_USER)]),
        };
        Api::<RoleBinding>::namespaced(admin.clone(), ENFORCEMENT)
            .patch(
                "devportal-apikey-secrets",
                &PatchParams::apply("wave3-secrets").force(),
                &Patch::Apply(&binding),
            )
            .await
            .unwrap();
        eventually("devportal's Secret writes to be narrowed", WAIT, || async {
            let elsewhere = can_i(Persona::Controller, &["delete", "secrets", "-n", "default"]);
            let enforcement = can_i(
                Persona::Controller,
                &["delete", "secrets", "-n", ENFORCEMENT],
            );
            (!elsewhere && enforcement).then_some(())
        })
        .await;
    }
    NarrowedRbac
}

/// The victims' namespace: the owner's product `toys` in `mode`, keys requested by both
/// consumers, who may also write their Secrets; devportal may write Secrets here (consumer copies).
/// devportal's Secret writes stay narrowed while the returned guard lives.
async fn namespace(prefix: &str, mode: ApprovalMode) -> (TestNamespace, Client, NarrowedRbac) {
    let admin = control_plane().client(Persona::Admin).await;
    let narrowed = narrowed_rbac(&admin).await;
    let ns = TestNamespace::with_bindings(
        prefix,
        &[
            ("devportal-api-owner", &["owner"]),
            ("devportal-api-consumer", &["consumer", "consumer2"]),
            (TENANT_SECRETS, &["consumer", "consumer2"]),
            ("devportal-apikey-secrets", &[DEVPORTAL_USER]),
        ],
    )
    .await;
    binding_in_effect(Persona::Controller, &["create", "secrets", "-n", &ns.name]).await;
    let owner = control_plane().client(Persona::Owner).await;
    fixtures::published_product(&admin, &owner, &ns.name, mode).await;
    (ns, admin, narrowed)
}

/// A tenant's own namespace where consumer2 may create and patch (not delete) Secrets; with
/// `devportal_writes`, devportal may write Secrets there too (a namespace where keys are requested).
async fn tenant_namespace(prefix: &str, devportal_writes: bool) -> TestNamespace {
    let mut roles: Vec<(&str, &[&str])> = vec![(TENANT_SECRETS, &["consumer2"])];
    if devportal_writes {
        roles.push(("devportal-apikey-secrets", &[DEVPORTAL_USER]));
    }
    let ns = TestNamespace::with_bindings(prefix, &roles).await;
    binding_in_effect(Persona::Consumer2, &["create", "secrets", "-n", &ns.name]).await;
    ns
}

async fn api<K>(persona: Persona, ns: &str) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    Api::namespaced(control_plane().client(persona).await, ns)
}

/// Creates the key `name` as `persona` (requestedBy stamped as the webhook would).
async fn request(persona: Persona, ns: &str, name: &str) -> Api<APIKey> {
    let keys = api::<APIKey>(persona, ns).await;
    let mut key = fixtures::requested_key(name, "toys", "gold");
    key.spec.requested_by.as_mut().unwrap().user_id = persona.name().into();
    keys.create(&PostParams::default(), &key).await.unwrap();
    keys
}

async fn review(ns: &str, name: &str, approved: bool) {
    api::<APIKey>(Persona::Owner, ns)
        .await
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"approval": {
                "approved": approved, "reviewedBy": "owner", "reason": "review"
            }}})),
        )
        .await
        .unwrap();
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

/// The enforcement Secrets in the enforcement namespace carrying `uid`.
async fn enforcement_of(admin: &Client, uid: &str) -> Vec<Secret> {
    Api::<Secret>::namespaced(admin.clone(), ENFORCEMENT)
        .list(&ListParams::default().labels(&format!(
            "{APIKEY_UID_LABEL}={uid},{ROLE_LABEL}={}",
            Role::Enforcement.as_str()
        )))
        .await
        .unwrap()
        .items
}

/// Waits until the key `ns/name` has exactly its two Secrets in their places holding one value,
/// and returns that value with the enforcement Secret.
async fn settled_value(admin: &Client, ns: &str, name: &str) -> (String, Secret) {
    eventually(&format!("{name}'s two Secrets in step"), WAIT, || async {
        // (Secrets planted elsewhere with the key's marks are not the key's.)
        let found: Vec<(String, Secret)> = secrets_of(admin, ns, name)
            .await
            .into_iter()
            .filter(|(role, s)| {
                let at = s.metadata.namespace.as_deref();
                (role == "enforcement" && at == Some(ENFORCEMENT))
                    || (role == "consumer" && at == Some(ns))
            })
            .collect();
        let [_, _] = found.as_slice() else {
            return None;
        };
        let (copy, enforced) = (consumer(&found), enforcement(&found));
        (api_key(copy) == api_key(enforced)).then(|| (api_key(enforced), enforced.clone()))
    })
    .await
}

/// What real Authorino accepts for the key's enforcement Secret under the product's AuthPolicy.
async fn accepted_by_authorino(admin: &Client, ns: &str, enforced: &Secret) -> String {
    let policy = Api::<AuthPolicy>::namespaced(admin.clone(), ns)
        .get("auth")
        .await
        .unwrap();
    authorino::indexed_key(enforced, &policy, ENFORCEMENT)
}

fn data(value: &str) -> BTreeMap<String, ByteString> {
    BTreeMap::from([(
        API_KEY_DATA.to_string(),
        ByteString(value.as_bytes().to_vec()),
    )])
}

/// A Secret in `ns` named `name` carrying devportal's enforcement marks for the key `victim`
/// (`uid_mark`: with its uid label, else the old layout's marks only) and the attacker's `value`.
fn planted(ns: &str, name: &str, victim: &APIKey, uid_mark: bool, value: &str) -> Secret {
    let mut labels = BTreeMap::from([
        (MANAGED_LABEL.to_string(), "true".to_string()),
        (
            ROLE_LABEL.to_string(),
            Role::Enforcement.as_str().to_string(),
        ),
        ("app".to_string(), "toystore".to_string()),
        (
            "authorino.kuadrant.io/managed-by".to_string(),
            "authorino".to_string(),
        ),
    ]);
    if uid_mark {
        labels.insert(
            APIKEY_UID_LABEL.into(),
            victim.metadata.uid.clone().unwrap(),
        );
    }
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                APIKEY_ANNOTATION.to_string(),
                secrets::key_reference(victim),
            )])),
            ..ObjectMeta::default()
        },
        data: Some(data(value)),
        ..Secret::default()
    }
}

/// Asserts that the Secret `ns/name` is still there, unchanged since `before`.
async fn untouched(admin: &Client, before: &Secret) {
    let ns = before.metadata.namespace.as_deref().unwrap();
    let name = before.metadata.name.as_deref().unwrap();
    let now = Api::<Secret>::namespaced(admin.clone(), ns)
        .get_opt(name)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("Secret {ns}/{name} was deleted"));
    assert_eq!(
        now.metadata.resource_version, before.metadata.resource_version,
        "Secret {ns}/{name} was changed"
    );
}

#[tokio::test]
async fn a_planted_secret_neither_chooses_a_victims_key_value_nor_blocks_its_revocation() {
    let _serial = exclusive_cluster().await;
    let (ns, admin, _narrowed) = namespace("planted", ApprovalMode::Manual).await;
    // The attacker's namespaces: one where devportal also writes (keys are requested there), one
    // where it has no Secret rights at all.
    let (writable, foreign) = (
        tenant_namespace("planted-tenant", true).await,
        tenant_namespace("planted-foreign", false).await,
    );
    let _controller = start_controller(&admin, &ns.name).await;
    let keys = request(Persona::Consumer, &ns.name, "victim").await;
    let victim = wait_phase(&keys, "victim", APIKeyPhase::Pending).await;

    // The attacker plants, in their own namespaces, Secrets with the victim key's marks and a
    // well-formed value of their choosing (the checksum is public): the old name-derived layout,
    // and the uid label (readable on the key's APIKeyRequest).
    let chosen = keys::generate("dpk").unwrap().expose().to_string();
    let legacy_name = secrets::legacy_enforcement_name(&victim);
    let mut plants = Vec::new();
    for tenant in [&writable, &foreign] {
        let secrets = api::<Secret>(Persona::Consumer2, &tenant.name).await;
        for (name, uid_mark) in [(legacy_name.as_str(), false), ("victim-key", true)] {
            let plant = planted(&tenant.name, name, &victim, uid_mark, &chosen);
            plants.push(
                secrets
                    .create(&PostParams::default(), &plant)
                    .await
                    .unwrap(),
            );
        }
    }

    review(&ns.name, "victim", true).await;
    wait_phase(&keys, "victim", APIKeyPhase::Approved).await;
    let (value, enforced) = settled_value(&admin, &ns.name, "victim").await;
    assert_ne!(value, chosen, "the planted value was adopted");
    assert!(keys::verify(&value));
    let accepted = accepted_by_authorino(&admin, &ns.name, &enforced).await;
    assert_eq!(accepted, value);
    assert_ne!(
        accepted, chosen,
        "Authorino would accept the attacker's value"
    );
    for plant in &plants {
        untouched(&admin, plant).await;
    }

    // Revocation: the owner denies the key; nothing in the tenants' namespaces holds it up.
    review(&ns.name, "victim", false).await;
    wait_phase(&keys, "victim", APIKeyPhase::Denied).await;
    eventually(
        "the denied key's enforcement Secret to go",
        WAIT,
        || async {
            enforcement_of(&admin, victim.metadata.uid.as_deref().unwrap())
                .await
                .is_empty()
                .then_some(())
        },
    )
    .await;
    // And deleting the key completes (its finalizer is not held up by them either).
    keys.delete("victim", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the key to be gone", WAIT, || async {
        keys.get_opt("victim").await.ok()?.is_none().then_some(())
    })
    .await;
    for plant in &plants {
        untouched(&admin, plant).await;
    }
}

#[tokio::test]
async fn a_consumer_cannot_enforce_another_keys_value_or_undo_a_rotation_through_their_copy() {
    let _serial = exclusive_cluster().await;
    let (ns, admin, _narrowed) = namespace("copy", ApprovalMode::Automatic).await;
    let _controller = start_controller(&admin, &ns.name).await;
    let mine = request(Persona::Consumer, &ns.name, "mine").await;
    request(Persona::Consumer2, &ns.name, "theirs").await;
    let key = wait_phase(&mine, "mine", APIKeyPhase::Approved).await;
    let (original, _) = settled_value(&admin, &ns.name, "mine").await;
    let (leaked, theirs_enforced) = settled_value(&admin, &ns.name, "theirs").await;
    let copy_name = key.status.unwrap().secret_ref.unwrap().name;
    let copies = api::<Secret>(Persona::Consumer, &ns.name).await;

    // The consumer writes another tenant's (leaked) value into their own copy, MAC and all.
    let theirs_copy = consumer(&secrets_of(&admin, &ns.name, "theirs").await).clone();
    let write_into_copy = |value: String, from: Secret| {
        let copies = copies.clone();
        let copy_name = copy_name.clone();
        async move {
            let mut copy = copies.get(&copy_name).await.unwrap();
            copy.data = Some(data(&value));
            let mac = from.metadata.annotations.as_ref().unwrap()[VALUE_MAC_ANNOTATION].clone();
            copy.metadata
                .annotations
                .get_or_insert_default()
                .insert(VALUE_MAC_ANNOTATION.into(), mac);
            copies
                .replace(&copy_name, &PostParams::default(), &copy)
                .await
                .unwrap();
        }
    };
    write_into_copy(leaked.clone(), theirs_copy).await;
    eventually("the consumer copy to be restored", WAIT, || async {
        (api_key(&copies.get(&copy_name).await.ok()?) == original).then_some(())
    })
    .await;
    let (value, enforced) = settled_value(&admin, &ns.name, "mine").await;
    assert_eq!(value, original, "the key's value never changes by itself");
    assert_eq!(
        accepted_by_authorino(&admin, &ns.name, &enforced).await,
        original
    );
    untouched(&admin, &theirs_enforced).await;

    // A rotation, then the consumer writes the old value back with its old MAC.
    let before_rotation = copies.get(&copy_name).await.unwrap();
    mine.patch(
        "mine",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {
            ROTATION_REQUEST_ANNOTATION: "2026-12-06T03:00:00Z"
        }}})),
    )
    .await
    .unwrap();
    let rotated = eventually("the rotation", WAIT, || async {
        let (value, _) = settled_value(&admin, &ns.name, "mine").await;
        (value != original).then_some(value)
    })
    .await;
    write_into_copy(original.clone(), before_rotation.clone()).await;
    eventually("the rotated value to be restored", WAIT, || async {
        (api_key(&copies.get(&copy_name).await.ok()?) == rotated).then_some(())
    })
    .await;
    let (value, enforced) = settled_value(&admin, &ns.name, "mine").await;
    assert_eq!(value, rotated, "the rotation stands");
    assert_eq!(
        accepted_by_authorino(&admin, &ns.name, &enforced).await,
        rotated
    );

    // Withdrawn meanwhile (no enforcement Secret to restore from): the old value written back is
    // not taken when the key is approved again; a new value is issued, and the consumer told.
    review(&ns.name, "mine", false).await;
    wait_phase(&mine, "mine", APIKeyPhase::Denied).await;
    eventually("the enforcement Secret to go", WAIT, || async {
        enforcement_of(&admin, key.metadata.uid.as_deref().unwrap())
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    write_into_copy(original.clone(), before_rotation).await;
    review(&ns.name, "mine", true).await;
    wait_phase(&mine, "mine", APIKeyPhase::Approved).await;
    let (value, enforced) = settled_value(&admin, &ns.name, "mine").await;
    assert!(value != original && value != rotated && value != leaked);
    assert_eq!(
        accepted_by_authorino(&admin, &ns.name, &enforced).await,
        value
    );
    let events = Api::<Event>::namespaced(admin.clone(), &ns.name);
    eventually("the KeyValueReissued warning", WAIT, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .find(|e| {
                e.reason.as_deref() == Some(KEY_VALUE_REISSUED)
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("mine")
            })
            .map(|e| {
                let note = e.note.clone().unwrap_or_default();
                assert!(note.contains(&copy_name), "{note}");
                assert!(
                    !note.contains(&original) && !note.contains(&value),
                    "{note}"
                );
            })
    })
    .await;
}

#[tokio::test]
async fn the_sweep_deletes_no_secret_outside_the_enforcement_namespace() {
    let _serial = exclusive_cluster().await;
    let (ns, admin, _narrowed) = namespace("sweep", ApprovalMode::Automatic).await;
    // A namespace where devportal may delete Secrets (keys are requested there) and a tenant may
    // patch, but not delete, someone else's Secret.
    let tenant = tenant_namespace("sweep-tenant", true).await;
    let others = Api::<Secret>::namespaced(admin.clone(), &tenant.name);
    let precious = others
        .create(
            &PostParams::default(),
            &Secret {
                metadata: ObjectMeta {
                    name: Some("precious".into()),
                    ..ObjectMeta::default()
                },
                data: Some(data("not the tenant's to delete")),
                ..Secret::default()
            },
        )
        .await
        .unwrap();
    let patcher = api::<Secret>(Persona::Consumer2, &tenant.name).await;
    assert!(
        !can_i(
            Persona::Consumer2,
            &["delete", "secrets", "-n", &tenant.name]
        ),
        "the tenant may not delete it themselves"
    );
    let marks = json!({"metadata": {
        "labels": {
            MANAGED_LABEL: "true",
            ROLE_LABEL: Role::Enforcement.as_str(),
            APIKEY_UID_LABEL: "00000000-0000-4000-8000-00000000dead",
        },
        "annotations": {APIKEY_ANNOTATION: format!("{}/gone", tenant.name)},
    }});
    let marked = patcher
        .patch("precious", &PatchParams::default(), &Patch::Merge(marks))
        .await
        .unwrap();
    assert_ne!(
        marked.metadata.resource_version,
        precious.metadata.resource_version
    );

    // A real orphan in the enforcement namespace, to see sweeps happen.
    let orphan = Secret {
        metadata: ObjectMeta {
            name: Some(format!("apikey-orphan-{}", ns.name)),
            labels: marked.metadata.labels.clone(),
            annotations: marked.metadata.annotations.clone(),
            ..ObjectMeta::default()
        },
        data: Some(data("orphaned")),
        ..Secret::default()
    };
    let enforcement_api = Api::<Secret>::namespaced(admin.clone(), ENFORCEMENT);
    enforcement_api
        .create(&PostParams::default(), &orphan)
        .await
        .unwrap();

    // Sweeps run at start, and after a key is deleted.
    let _controller = start_controller(&admin, &ns.name).await;
    let keys = request(Persona::Consumer, &ns.name, "brief").await;
    wait_phase(&keys, "brief", APIKeyPhase::Approved).await;
    keys.delete("brief", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the orphan in the enforcement namespace to be swept",
        WAIT,
        || async {
            enforcement_api
                .get_opt(orphan.metadata.name.as_deref().unwrap())
                .await
                .ok()?
                .is_none()
                .then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    untouched(&admin, &marked).await;
}

#[tokio::test]
async fn a_key_enforced_by_the_previous_release_keeps_its_value_across_the_upgrade() {
    let _serial = exclusive_cluster().await;
    let (ns, admin, _narrowed) = namespace("upgrade", ApprovalMode::Manual).await;
    // The previous release ran: the key was approved and its two Secrets written as it wrote them
    // (names from the uid, the enforcement Secret in the enforcement namespace, no MAC).
    let keys = request(Persona::Consumer, &ns.name, "old").await;
    review(&ns.name, "old", true).await;
    let key = keys.get("old").await.unwrap();
    let uid = key.metadata.uid.clone().unwrap();
    let legacy = keys::generate("dpk").unwrap();
    let policy = Api::<AuthPolicy>::namespaced(admin.clone(), &ns.name)
        .get("auth")
        .await
        .unwrap();
    // The previous release's labels: those the AuthPolicy asks for, without the product's own.
    let mut labels = secrets::labels_for_rule(
        &uid,
        secrets::ProductId {
            namespace: &ns.name,
            name: &key.spec.api_product_ref.name,
        },
        &devportal::selector::parse(AUTHORINO_DEFAULT_SECRET_SELECTOR).unwrap(),
        &authorino::api_key_rule(&policy).selector,
    )
    .unwrap();
    labels.remove(devportal::names::PRODUCT_LABEL);
    labels.remove(devportal::names::PRODUCT_NAMESPACE_LABEL);
    let target = Enforcement::for_key(&key, ENFORCEMENT.into(), labels);
    let old_enforcement = secrets::enforcement_secret(&key, &target, &legacy);
    let old_copy = secrets::consumer_secret(&key, &legacy);
    assert!(secrets::value_mac(&old_copy.metadata).is_none());
    Api::<Secret>::namespaced(admin.clone(), ENFORCEMENT)
        .create(&PostParams::default(), &old_enforcement)
        .await
        .unwrap();
    Api::<Secret>::namespaced(admin.clone(), &ns.name)
        .create(&PostParams::default(), &old_copy)
        .await
        .unwrap();

    // The new release starts: the enforced value is kept, and its copy gets devportal's MAC.
    let _controller = start_controller(&admin, &ns.name).await;
    wait_phase(&keys, "old", APIKeyPhase::Approved).await;
    let copies = Api::<Secret>::namespaced(admin.clone(), &ns.name);
    let copy_name = secrets::consumer_secret_name(&key);
    eventually("the copy to be vouched for", WAIT, || async {
        let copy = copies.get(&copy_name).await.ok()?;
        secrets::value_mac(&copy.metadata).map(|_| ())
    })
    .await;
    let (value, enforced) = settled_value(&admin, &ns.name, "old").await;
    assert_eq!(value, legacy.expose(), "the upgrade kept the key's value");
    assert_eq!(
        accepted_by_authorino(&admin, &ns.name, &enforced).await,
        value
    );

    // Withdrawn and approved again: the same value, taken back from the consumer copy.
    review(&ns.name, "old", false).await;
    wait_phase(&keys, "old", APIKeyPhase::Denied).await;
    eventually("the enforcement Secret to go", WAIT, || async {
        enforcement_of(&admin, &uid).await.is_empty().then_some(())
    })
    .await;
    review(&ns.name, "old", true).await;
    wait_phase(&keys, "old", APIKeyPhase::Approved).await;
    let (value, enforced) = settled_value(&admin, &ns.name, "old").await;
    assert_eq!(value, legacy.expose(), "the value survived the withdrawal");
    assert_eq!(
        accepted_by_authorino(&admin, &ns.name, &enforced).await,
        value
    );
}
