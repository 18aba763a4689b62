//! Key rotation through the real API server, with devportal's webhook and controller running: the
//! requester annotates their Approved key with a rotation token, and both Secrets get one new
//! value (the enforcement Secret updated in place, so Authorino re-indexes it and the old value
//! stops at once), recorded in `status.rotation`; the same token again does nothing. And the
//! attacks: another consumer or the product's owner (who may approve it) rotating someone's key,
//! and a rotation request on a key whose value comes from the consumer's own Secret.

use crate::support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use devportal::names::key_reason::ROTATED;
use devportal::names::{
    DEFAULT_KUADRANT_NAMESPACE, ROTATION_ANNOTATION, ROTATION_REQUEST_ANNOTATION,
};
use devportal::resources::kuadrant::AuthPolicy;
use devportal::resources::{APIKey, APIKeyPhase, ApprovalMode, LocalSecretRef};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use support::authorino::{DEFAULT_SECRET_LABEL, api_key_rule, selector_matches};
use support::secrets::{annotation, api_key, consumer, enforcement, secrets_of};
use support::{Persona, TestNamespace, control_plane_with_devportal, eventually, fixtures};

const WAIT: Duration = Duration::from_secs(60);

async fn client(persona: Persona) -> Client {
    control_plane_with_devportal().client(persona).await
}

/// A namespace with the owner's automatic product `toys`, once its plans are discovered.
async fn published(prefix: &str) -> (TestNamespace, Client) {
    control_plane_with_devportal();
    let ns = TestNamespace::new(prefix).await;
    let admin = client(Persona::Admin).await;
    let owner = client(Persona::Owner).await;
    fixtures::published_product(&admin, &owner, &ns.name, ApprovalMode::Automatic).await;
    fixtures::product_ready(&admin, &ns.name, WAIT).await;
    (ns, admin)
}

/// The consumer's key `name`, requested and Approved, with its two Secrets holding one value.
async fn approved_key(admin: &Client, ns: &str, name: &str) -> Vec<(String, Secret)> {
    let keys = Api::<APIKey>::namespaced(client(Persona::Consumer).await, ns);
    keys.create(&PostParams::default(), &fixtures::key(name, "toys", "gold"))
        .await
        .expect("the consumer requests a key");
    eventually(
        &format!("{name} Approved with both Secrets"),
        WAIT,
        || async {
            let key = keys.get(name).await.ok()?;
            let approved = key.status.as_ref()?.phase == Some(APIKeyPhase::Approved);
            let secrets = secrets_of(admin, ns, name).await;
            (approved
                && secrets.len() == 2
                && api_key(consumer(&secrets)) == api_key(enforcement(&secrets)))
            .then_some(secrets)
        },
    )
    .await
}

/// Sets the rotation request of `ns/name` to `token` as `persona`, by merge patch (as
/// `kubectl devportal rotate` does), with any `extra` annotations.
async fn ask_rotation(
    persona: Persona,
    ns: &str,
    name: &str,
    token: &str,
    extra: serde_json::Value,
) -> kube::Result<APIKey> {
    let mut annotations = json!({ ROTATION_REQUEST_ANNOTATION: token });
    if let Some(extra) = extra.as_object() {
        for (k, v) in extra {
            annotations[k] = v.clone();
        }
    }
    Api::<APIKey>::namespaced(client(persona).await, ns)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": annotations}})),
        )
        .await
}

/// Waits until `status.rotation.request` of `ns/name` is `token`; returns the key's Secrets.
async fn rotated(admin: &Client, ns: &str, name: &str, token: &str) -> Vec<(String, Secret)> {
    let keys = Api::<APIKey>::namespaced(admin.clone(), ns);
    eventually(&format!("rotation {token:?} recorded"), WAIT, || async {
        let key = keys.get(name).await.ok()?;
        (key.status?.rotation?.request == token).then_some(())
    })
    .await;
    secrets_of(admin, ns, name).await
}

/// The key values an Authorino with default flags accepts for the AuthPolicy `auth` of `ns`: the
/// `api_key` of every Secret it indexes for that rule (see tests/support/authorino.rs).
async fn accepted_values(admin: &Client, ns: &str) -> BTreeSet<String> {
    let policy = Api::<AuthPolicy>::namespaced(admin.clone(), ns)
        .get("auth")
        .await
        .unwrap();
    let rule = api_key_rule(&policy);
    let label = format!("{}={}", DEFAULT_SECRET_LABEL.0, DEFAULT_SECRET_LABEL.1);
    Api::<Secret>::namespaced(admin.clone(), DEFAULT_KUADRANT_NAMESPACE)
        .list(&ListParams::default().labels(&label))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|s| {
            selector_matches(
                &rule.selector,
                &s.metadata.labels.clone().unwrap_or_default(),
            )
        })
        .map(|s| api_key(&s))
        .collect()
}

fn version(secret: &Secret) -> String {
    secret.metadata.resource_version.clone().unwrap()
}

/// The notes of the Events about the key `name` in `ns`.
async fn event_notes(admin: &Client, ns: &str, name: &str) -> Vec<(String, String)> {
    Api::<Event>::namespaced(admin.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn the_requester_rotates_a_key_once_per_token_and_the_old_value_stops() {
    let (ns, admin) = published("rotate").await;
    let before = approved_key(&admin, &ns.name, "mine").await;
    let old = api_key(consumer(&before));
    assert!(accepted_values(&admin, &ns.name).await.contains(&old));

    let token = "2026-12-01T07:00:00Z";
    let asked = Instant::now();
    ask_rotation(Persona::Consumer, &ns.name, "mine", token, json!({}))
        .await
        .expect("the requester may ask for a rotation");
    let after = rotated(&admin, &ns.name, "mine", token).await;
    // A figure for docs/operations.md, not an assertion (polled every 100 ms).
    eprintln!(
        "rotation: request to recorded status in at most {:?}",
        asked.elapsed()
    );
    let new = api_key(consumer(&after));
    assert_ne!(new, old, "a new value");
    assert_eq!(api_key(enforcement(&after)), new, "both Secrets hold it");
    assert!(
        devportal::keys::verify(&new),
        "generated as every devportal key"
    );
    for secret in [consumer(&after), enforcement(&after)] {
        assert_eq!(annotation(secret, ROTATION_ANNOTATION), Some(token));
    }
    // The enforcement Secret was updated in place (Authorino re-indexes a change of `api_key`).
    assert_eq!(
        enforcement(&after).metadata.uid,
        enforcement(&before).metadata.uid
    );
    let accepted = accepted_values(&admin, &ns.name).await;
    assert!(accepted.contains(&new), "the gateway accepts the new value");
    assert!(!accepted.contains(&old), "and no longer the old one");

    // The same token again (with another change, so the controller looks at the key): nothing.
    let versions = [version(consumer(&after)), version(enforcement(&after))];
    ask_rotation(
        Persona::Consumer,
        &ns.name,
        "mine",
        token,
        json!({"example.com/note": "again"}),
    )
    .await
    .expect("an unchanged token is fine");
    // Give the controller ample time to act on that change (it takes milliseconds); the Event
    // count below confirms no rotation came of it either.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let settled = secrets_of(&admin, &ns.name, "mine").await;
    assert_eq!(
        [version(consumer(&settled)), version(enforcement(&settled))],
        versions,
        "the same token rotates nothing"
    );
    let second = "2026-12-01T08:00:00Z";
    ask_rotation(Persona::Admin, &ns.name, "mine", second, json!({}))
        .await
        .expect("an admin may ask for a rotation");
    let last = rotated(&admin, &ns.name, "mine", second).await;
    let newest = api_key(consumer(&last));
    assert!(newest != new && newest != old);
    assert_eq!(api_key(enforcement(&last)), newest);

    // One Rotated Event per token, none repeating a value.
    let notes = eventually("two Rotated Events", WAIT, || async {
        let notes = event_notes(&admin, &ns.name, "mine").await;
        (notes.iter().filter(|(r, _)| r == ROTATED).count() == 2).then_some(notes)
    })
    .await;
    for (_, note) in &notes {
        for value in [&old, &new, &newest] {
            assert!(!note.contains(value.as_str()), "an Event shows a key value");
        }
    }
}

#[tokio::test]
async fn another_consumer_or_the_products_owner_may_not_rotate_my_key() {
    let (ns, admin) = published("rotate-attack").await;
    let before = approved_key(&admin, &ns.name, "mine").await;
    for attacker in [Persona::Consumer2, Persona::Owner] {
        let refused = ask_rotation(attacker, &ns.name, "mine", "now", json!({})).await;
        match refused {
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 403, "{status:?}");
                assert!(
                    status.message.contains(
                        "only the key's requester \"consumer\" or an API admin may ask for its rotation"
                    ),
                    "{}",
                    status.message
                );
            }
            other => panic!("{attacker:?} rotated the consumer's key: {other:?}"),
        }
    }
    let after = secrets_of(&admin, &ns.name, "mine").await;
    assert_eq!(api_key(consumer(&after)), api_key(consumer(&before)));
    assert_eq!(version(enforcement(&after)), version(enforcement(&before)));
    let key = Api::<APIKey>::namespaced(admin, &ns.name)
        .get("mine")
        .await
        .unwrap();
    assert!(key.status.unwrap().rotation.is_none());
}

#[tokio::test]
async fn a_key_with_its_own_secret_is_rotated_in_that_secret() {
    let (ns, _admin) = published("rotate-own").await;
    let keys = Api::<APIKey>::namespaced(client(Persona::Consumer).await, &ns.name);
    let mut own = fixtures::key("brought", "toys", "gold");
    own.spec.secret_ref = Some(LocalSecretRef {
        name: "my-key".into(),
    });
    keys.create(&PostParams::default(), &own)
        .await
        .expect("a key with its own Secret");
    let refused = ask_rotation(Persona::Consumer, &ns.name, "brought", "now", json!({})).await;
    match refused {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            assert!(
                status.message.contains(
                    "this key's value comes from your Secret \"my-key\": write a new value there"
                ),
                "{}",
                status.message
            );
        }
        other => panic!("a rotation request on a brought key was admitted: {other:?}"),
    }
}

#[tokio::test]
async fn a_key_asked_to_rotate_before_it_has_a_value_answers_with_its_first_one() {
    let (ns, admin) = published("rotate-first").await;
    let keys = Api::<APIKey>::namespaced(client(Persona::Consumer).await, &ns.name);
    let mut key = fixtures::key("early", "toys", "gold");
    let token = "2026-12-01T07:00:00Z";
    key.metadata.annotations =
        Some([(ROTATION_REQUEST_ANNOTATION.to_string(), token.into())].into());
    keys.create(&PostParams::default(), &key)
        .await
        .expect("the requester may ask at creation");
    let secrets = rotated(&admin, &ns.name, "early", token).await;
    assert_eq!(secrets.len(), 2);
    let value = api_key(consumer(&secrets));
    assert_eq!(api_key(enforcement(&secrets)), value);
    // The first value answered the request: no second value was issued for it.
    for secret in [consumer(&secrets), enforcement(&secrets)] {
        assert_eq!(annotation(secret, ROTATION_ANNOTATION), None);
    }
    let notes = event_notes(&admin, &ns.name, "early").await;
    assert!(
        notes.iter().all(|(reason, _)| reason != ROTATED),
        "{notes:?}"
    );
}
