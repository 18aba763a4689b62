//! The key limit per requester and product (`--max-keys-per-user-per-product` 5, and here
//! `--expired-key-grace` 30s) through the real API server: two `devportal webhook` replicas
//! behind a round-robin proxy, registered with failurePolicy Fail, and a `devportal controller`
//! as the backstop. The consumer persona makes every attempt.

use crate::support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use devportal::names::key_reason::KEY_LIMIT_EXCEEDED;
use devportal::names::{APIKEY_ANNOTATION, MANAGED_SELECTOR, ROLE_LABEL};
use devportal::resources::{APIKey, APIKeyPhase, ApprovalMode, LocalSecretRef};
use devportal::secrets::Role;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use support::replicas::Replicated;
use support::serial::exclusive_cluster;
use support::{Devportal, Persona, TestNamespace, control_plane, eventually, fixtures};

const LIMIT: usize = 5;
const GRACE: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(60);
/// Namespaces with this label are left out of the validating webhook, so only the controller
/// stands between the consumer and more keys than the limit (as when webhook replicas cannot see
/// each other's admissions).
const UNGUARDED_LABEL: &str = "devportal.kuadrant.io/guardrail-test-unguarded";

/// The webhook replicas, the proxy and the controller of one test (stopped, and the webhooks
/// unregistered, when dropped).
fn guarded() -> Replicated {
    let flags = [
        "--max-keys-per-user-per-product".to_string(),
        LIMIT.to_string(),
        "--expired-key-grace".into(),
        format!("{}s", GRACE.as_secs()),
    ];
    Replicated::start(2, &flags, UNGUARDED_LABEL)
}

/// A fresh namespace with the usual automatically approving product `toys` (gold, silver),
/// discovered by the controller; the admin client and the test's replicas.
async fn published(prefix: &str, unguarded: bool) -> (TestNamespace, Client, Replicated) {
    let guarded = guarded();
    let ns = TestNamespace::new(prefix).await;
    let admin = control_plane().client(Persona::Admin).await;
    if unguarded {
        Api::<Namespace>::all(admin.clone())
            .patch(
                &ns.name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {UNGUARDED_LABEL: "true"}}})),
            )
            .await
            .expect("namespace labelled");
    }
    fixtures::published_product(&admin, &admin, &ns.name, ApprovalMode::Automatic).await;
    fixtures::product_ready(&admin, &ns.name, WAIT).await;
    (ns, admin, guarded)
}

async fn consumer_keys(ns: &str) -> Api<APIKey> {
    Api::namespaced(control_plane().client(Persona::Consumer).await, ns)
}

fn phase(key: &APIKey) -> Option<APIKeyPhase> {
    key.status.as_ref().and_then(|s| s.phase)
}

fn reason_of(key: &APIKey) -> Option<(String, String)> {
    let status = key.status.as_ref()?;
    let phase = status.phase?;
    status
        .conditions
        .iter()
        .find(|c| c.type_ == phase.as_str())
        .map(|c| (c.reason.clone(), c.message.clone()))
}

/// The keys of `ns` in line order: creation time, then name, then uid.
fn in_line(mut keys: Vec<APIKey>) -> Vec<APIKey> {
    keys.sort_by_key(|k| {
        (
            k.metadata.creation_timestamp.as_ref().map(|t| t.0),
            k.name_any(),
            k.uid(),
        )
    });
    keys
}

/// The keys of `ns` that are live now: Approved, or with an enforcement Secret (the gateway
/// accepts the key).
async fn live_keys(admin: &Client, ns: &str) -> BTreeSet<String> {
    let keys = Api::<APIKey>::namespaced(admin.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("keys listed");
    let mut live: BTreeSet<String> = keys
        .items
        .iter()
        .filter(|k| phase(k) == Some(APIKeyPhase::Approved))
        .map(ResourceExt::name_any)
        .collect();
    let secrets = Api::<Secret>::all(admin.clone())
        .list(&ListParams::default().labels(MANAGED_SELECTOR))
        .await
        .expect("secrets listed");
    let prefix = format!("{ns}/");
    live.extend(secrets.items.iter().filter_map(|s| {
        if s.labels().get(ROLE_LABEL).map(String::as_str) != Some(Role::Enforcement.as_str()) {
            return None;
        }
        s.annotations()
            .get(APIKEY_ANNOTATION)?
            .strip_prefix(&prefix)
            .map(str::to_string)
    }));
    live
}

/// Watches `ns` until `stop`, returning the most keys that were ever live at once.
fn watch_live(
    admin: Client,
    ns: String,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<BTreeSet<String>> {
    tokio::spawn(async move {
        let mut most = BTreeSet::new();
        while !stop.load(Ordering::Relaxed) {
            let live = live_keys(&admin, &ns).await;
            if live.len() > most.len() {
                most = live;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        most
    })
}

/// CREATE requests of the `replica`'s webhook so far, from its metrics.
async fn creates_served(replica: &Devportal) -> u64 {
    let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", replica.admin_port))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|l| {
            l.starts_with("devportal_admission_requests_total{")
                && l.contains("resource=\"apikeys\"")
                && l.contains("operation=\"CREATE\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Waits until exactly the first [`LIMIT`] counting keys of `ns` in line order are Approved and
/// every later one is Pending with `KeyLimitExceeded`; returns the keys in line order.
async fn settled_line(keys: &Api<APIKey>, expected: usize) -> Vec<APIKey> {
    eventually(
        "the first keys Approved and the rest held back",
        WAIT,
        || async {
            let all = in_line(keys.list(&ListParams::default()).await.ok()?.items);
            if all.len() != expected {
                return None;
            }
            let (first, rest) = all.split_at(LIMIT.min(all.len()));
            let approved = first
                .iter()
                .all(|k| phase(k) == Some(APIKeyPhase::Approved));
            let held = rest.iter().all(|k| {
                phase(k) == Some(APIKeyPhase::Pending)
                    && reason_of(k).is_some_and(|(reason, _)| reason == KEY_LIMIT_EXCEEDED)
            });
            (approved && held).then_some(all)
        },
    )
    .await
}

#[tokio::test]
async fn twenty_simultaneous_creates_across_two_replicas_leave_at_most_five_live_keys() {
    let _serial = exclusive_cluster().await;
    let (ns, admin, guarded) = published("burst", false).await;
    let keys = consumer_keys(&ns.name).await;
    let before: Vec<u64> =
        futures::future::join_all(guarded.replicas.iter().map(creates_served)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_live(admin.clone(), ns.name.clone(), stop.clone());

    let attempts = (0..20).map(|i| {
        let keys = keys.clone();
        async move {
            let key = fixtures::key(&format!("k{i:02}"), "toys", "gold");
            keys.create(&PostParams::default(), &key).await
        }
    });
    let results = futures::future::join_all(attempts).await;
    let mut admitted = 0;
    let mut refused = 0;
    for result in results {
        match result {
            Ok(_) => admitted += 1,
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 403, "{}", status.message);
                assert!(
                    status
                        .message
                        .contains("keys already exist for \"consumer\" on APIProduct")
                        && status.message.contains("the limit is 5"),
                    "{}",
                    status.message
                );
                refused += 1;
            }
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    eprintln!(
        "{admitted} of 20 admitted, {refused} refused, over {} proxied connections",
        guarded.proxy.connections()
    );
    // Each replica promises at most five places; neither sees the other's promises.
    assert!(
        (LIMIT..=2 * LIMIT).contains(&admitted),
        "{admitted} admitted"
    );
    assert!(refused >= 20 - 2 * LIMIT, "{refused} refused");

    let line = settled_line(&keys, admitted).await;
    // A moment more for any late approval to show, then the most ever live.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let most = watcher.await.unwrap();
    let first: BTreeSet<String> = line[..LIMIT].iter().map(ResourceExt::name_any).collect();
    assert!(most.len() <= LIMIT, "live at once: {most:?}");
    assert_eq!(
        live_keys(&admin, &ns.name).await,
        first,
        "the first five by creation order"
    );
    for held in &line[LIMIT..] {
        let (_, message) = reason_of(held).unwrap();
        assert!(
            message.contains("keys already exist for \"consumer\" on APIProduct")
                && message.contains("the limit is 5"),
            "{message}"
        );
    }

    let after: Vec<u64> =
        futures::future::join_all(guarded.replicas.iter().map(creates_served)).await;
    assert!(
        before.iter().zip(&after).all(|(b, a)| a > b),
        "both replicas admitted CREATEs: {before:?} → {after:?} over {} proxied connections",
        guarded.proxy.connections()
    );
}

#[tokio::test]
async fn the_controller_approves_only_the_first_five_and_lets_the_next_through_when_one_goes() {
    let _serial = exclusive_cluster().await;
    // The validating webhook does not cover this namespace: seven keys reach the API server.
    let (ns, admin, _guarded) = published("backstop", true).await;
    let keys = consumer_keys(&ns.name).await;
    for i in 0..7 {
        let key = fixtures::key(&format!("k{i}"), "toys", "gold");
        keys.create(&PostParams::default(), &key)
            .await
            .expect("no webhook refuses it here");
    }
    let line = settled_line(&keys, 7).await;
    let names: Vec<String> = line.iter().map(ResourceExt::name_any).collect();
    let first: BTreeSet<String> = names[..LIMIT].iter().cloned().collect();
    assert_eq!(live_keys(&admin, &ns.name).await, first);
    for held in &names[LIMIT..] {
        let secrets = support::secrets::secrets_of(&admin, &ns.name, held).await;
        assert!(
            secrets.is_empty(),
            "{held} was never approved, so has no Secret"
        );
    }

    // Deleting an approved key lets the next in line through, and only that one.
    keys.delete(&names[0], &DeleteParams::default())
        .await
        .unwrap();
    let line = settled_line(&keys, 6).await;
    assert_eq!(line[LIMIT - 1].name_any(), names[LIMIT]);
    assert_eq!(line[LIMIT].name_any(), names[LIMIT + 1]);

    // A rejection by an owner gives up the place too.
    Api::<APIKey>::namespaced(admin.clone(), &ns.name)
        .patch(
            &names[1],
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"approval": {"approved": false, "reason": "no"}}})),
        )
        .await
        .expect("the admin rejects a key");
    eventually("the last key approved", WAIT, || async {
        let key = keys.get(&names[LIMIT + 1]).await.ok()?;
        (phase(&key) == Some(APIKeyPhase::Approved)).then_some(())
    })
    .await;
    let live = live_keys(&admin, &ns.name).await;
    assert_eq!(live.len(), LIMIT, "{live:?}");
}

#[tokio::test]
async fn failed_and_recently_expired_keys_count_until_the_grace_ends() {
    let _serial = exclusive_cluster().await;
    let (ns, _admin, _guarded) = published("counted", false).await;
    let keys = consumer_keys(&ns.name).await;
    // A bring-your-own key whose Secret does not exist: Failed, but one Secret away from live.
    let mut byo = fixtures::key("byo", "toys", "gold");
    byo.spec.secret_ref = Some(LocalSecretRef {
        name: "missing".into(),
    });
    keys.create(&PostParams::default(), &byo).await.unwrap();
    for i in 0..3 {
        let key = fixtures::key(&format!("k{i}"), "toys", "gold");
        keys.create(&PostParams::default(), &key).await.unwrap();
    }
    let expires = Timestamp::now() + SignedDuration::from_secs(4);
    let mut short = fixtures::key("short", "toys", "gold");
    short.spec.expires_at = Some(Time(expires));
    keys.create(&PostParams::default(), &short).await.unwrap();

    for (name, wanted) in [
        ("byo", APIKeyPhase::Failed),
        ("short", APIKeyPhase::Expired),
    ] {
        eventually(&format!("{name} {wanted:?}"), WAIT, || async {
            let key = keys.get(name).await.ok()?;
            (phase(&key) == Some(wanted)).then_some(())
        })
        .await;
    }
    let sixth = fixtures::key("sixth", "toys", "gold");
    let Err(kube::Error::Api(status)) = keys.create(&PostParams::default(), &sixth).await else {
        panic!("a sixth key while the Failed and the expired ones count");
    };
    assert_eq!(status.code, 403);
    assert!(
        status
            .message
            .contains("denied the request: 5 keys already exist for \"consumer\" on APIProduct"),
        "{}",
        status.message
    );

    // Past the grace the expired key no longer counts: the sixth is admitted and approved.
    let grace_ends = expires + SignedDuration::try_from(GRACE).unwrap();
    tokio::time::sleep(
        Duration::try_from(grace_ends.duration_since(Timestamp::now())).unwrap_or_default(),
    )
    .await;
    eventually("the sixth key admitted", WAIT, || async {
        keys.create(&PostParams::default(), &sixth).await.ok()
    })
    .await;
    eventually("the sixth key Approved", WAIT, || async {
        let key = keys.get("sixth").await.ok()?;
        (phase(&key) == Some(APIKeyPhase::Approved)).then_some(())
    })
    .await;
}
