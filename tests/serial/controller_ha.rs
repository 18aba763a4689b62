//! The controller across process deaths: a crash between writing the Secrets and writing status,
//! and two replicas behind one Lease. The tests here run one at a time: each starts its own
//! controllers, which would otherwise reconcile each other's keys.

use crate::support;

use std::time::{Duration, Instant};

use devportal::resources::{APIKey, APIKeyPhase, ApprovalMode};
use devportal::secrets::Role;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use support::secrets::{api_key, secrets_of};
use support::serial::exclusive_cluster;
use support::{
    Devportal, Persona, SYSTEM_NAMESPACE, TestNamespace, control_plane, eventually, fixtures,
};

const WAIT: Duration = Duration::from_secs(30);

async fn request(ns: &str, name: &str) -> Api<APIKey> {
    let keys = Api::<APIKey>::namespaced(control_plane().client(Persona::Consumer).await, ns);
    keys.create(
        &PostParams::default(),
        &fixtures::requested_key(name, "toys", "gold"),
    )
    .await
    .unwrap();
    keys
}

async fn enforcement_secrets(admin: &Client, ns: &str, key: &str) -> Vec<Secret> {
    secrets_of(admin, ns, key)
        .await
        .into_iter()
        .filter(|(role, _)| role == Role::Enforcement.as_str())
        .map(|(_, secret)| secret)
        .collect()
}

async fn phase(keys: &Api<APIKey>, name: &str) -> Option<APIKeyPhase> {
    keys.get(name).await.ok()?.status?.phase
}

#[tokio::test]
async fn a_crash_between_secret_and_status_neither_duplicates_nor_loses_the_key() {
    let _serial = exclusive_cluster().await;
    let (ns, admin) =
        fixtures::published_namespace("crash", Persona::Admin, ApprovalMode::Automatic).await;
    let lease = ["--lease-name", "crash-test"];
    // At this test's key only: the controller reconciles the keys earlier tests left too.
    let crash_at = format!("after-secrets:{}/mine", ns.name);
    let mut crashing = Devportal::controller(&lease, &[("DEVPORTAL_CRASH_AT", &crash_at)]);
    let keys = request(&ns.name, "mine").await;
    let exit = crashing
        .wait_exit(WAIT)
        .expect("the controller dies at the crash point");
    assert_eq!(exit.code(), Some(86), "{}", crashing.log_text());
    let written = enforcement_secrets(&admin, &ns.name, "mine").await;
    assert_eq!(
        written.len(),
        1,
        "the Secret was written before the crash: {}",
        crashing.log_text()
    );
    assert_eq!(phase(&keys, "mine").await, None, "the status was not");
    let before = api_key(&written[0]);

    let _restarted = Devportal::controller(&lease, &[]);
    eventually("the key to be approved after the restart", WAIT, || async {
        (phase(&keys, "mine").await == Some(APIKeyPhase::Approved)).then_some(())
    })
    .await;
    let after = enforcement_secrets(&admin, &ns.name, "mine").await;
    assert_eq!(after.len(), 1, "still exactly one enforcement Secret");
    assert_eq!(
        api_key(&after[0]),
        before,
        "the same key, not a regenerated one"
    );
    let copy_name = keys
        .get("mine")
        .await
        .unwrap()
        .status
        .unwrap()
        .secret_ref
        .unwrap()
        .name;
    let copy = Api::<Secret>::namespaced(admin, &ns.name)
        .get(&copy_name)
        .await
        .unwrap();
    assert_eq!(api_key(&copy), before);
}

async fn holder(admin: &Client, lease: &str) -> Option<String> {
    Api::<Lease>::namespaced(admin.clone(), SYSTEM_NAMESPACE)
        .get_opt(lease)
        .await
        .ok()??
        .spec?
        .holder_identity
}

/// The reporting instances of the Events recorded about `key`.
async fn reporters(admin: &Client, ns: &str, key: &str) -> Vec<String> {
    Api::<Event>::namespaced(admin.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(key))
        .filter_map(|e| e.reporting_instance)
        .collect()
}

#[tokio::test]
async fn two_replicas_one_writer_and_the_standby_takes_over() {
    let _serial = exclusive_cluster().await;
    let (ns, admin) =
        fixtures::published_namespace("replicas", Persona::Admin, ApprovalMode::Automatic).await;
    let lease = "replicas-test";
    let args = |identity: &'static str| {
        vec![
            "--lease-name",
            lease,
            "--lease-identity",
            identity,
            "--lease-duration",
            "4s",
            "--lease-renew-deadline",
            "3s",
            "--lease-retry-period",
            "500ms",
        ]
    };
    let mut first = Devportal::controller(&args("replica-a"), &[]);
    eventually("replica-a to lead", WAIT, || async {
        (holder(&admin, lease).await.as_deref() == Some("replica-a")).then_some(())
    })
    .await;
    let second = Devportal::controller(&args("replica-b"), &[]);

    let keys = request(&ns.name, "first").await;
    eventually("the first key to be approved", WAIT, || async {
        (phase(&keys, "first").await == Some(APIKeyPhase::Approved)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        reporters(&admin, &ns.name, "first").await,
        ["replica-a"],
        "only the leader writes"
    );
    assert!(
        !second.log_text().contains("became leader"),
        "the standby stays idle"
    );
    assert_eq!(holder(&admin, lease).await.as_deref(), Some("replica-a"));

    first.kill();
    let killed_at = Instant::now();
    eventually("replica-b to take over", WAIT, || async {
        (holder(&admin, lease).await.as_deref() == Some("replica-b")).then_some(())
    })
    .await;
    // How long it took is a figure (docs/benchmarks.md), not a pass mark: a busy machine may
    // stretch it, and the order of events is what matters here.
    println!(
        "standby took over {:?} after the leader was killed (lease duration 4s)",
        killed_at.elapsed()
    );

    let keys = request(&ns.name, "second").await;
    eventually(
        "the second key to be approved by the new leader",
        WAIT,
        || async { (phase(&keys, "second").await == Some(APIKeyPhase::Approved)).then_some(()) },
    )
    .await;
    // The Event follows the status write: wait for it rather than race it.
    let reported = eventually("an Event about the second key", WAIT, || async {
        let reporters = reporters(&admin, &ns.name, "second").await;
        (!reporters.is_empty()).then_some(reporters)
    })
    .await;
    assert_eq!(reported, ["replica-b"], "only the new leader writes");
    assert_eq!(
        enforcement_secrets(&admin, &ns.name, "second").await.len(),
        1
    );
}

#[tokio::test]
async fn graceful_shutdown_releases_the_lease_for_an_immediate_takeover() {
    let _serial = exclusive_cluster().await;
    let admin = control_plane().client(Persona::Admin).await;
    let lease = "release-test";
    let args = |identity: &'static str| {
        vec![
            "--lease-name",
            lease,
            "--lease-identity",
            identity,
            "--lease-duration",
            "15s",
            "--lease-renew-deadline",
            "10s",
            "--lease-retry-period",
            "500ms",
        ]
    };
    let mut first = Devportal::controller(&args("leaving"), &[]);
    eventually("the first replica to lead", WAIT, || async {
        (holder(&admin, lease).await.as_deref() == Some("leaving")).then_some(())
    })
    .await;
    let _second = Devportal::controller(&args("staying"), &[]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The leader's renewal as the Lease shows it just before SIGTERM: the Lease it held was valid
    // until at least this plus its duration.
    let renewed = lease_spec(&admin, lease).await;
    assert_eq!(renewed.holder_identity.as_deref(), Some("leaving"));
    let valid_until = renewed.renew_time.expect("a renewal").0
        + Duration::from_secs(renewed.lease_duration_seconds.expect("a duration") as u64);
    let status = first
        .terminate(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("SIGTERM did not stop it:\n{}", first.log_text()));
    assert!(
        status.success(),
        "SIGTERM exits 0: {status}\n{}",
        first.log_text()
    );
    assert!(first.log_text().contains("released the lease"));
    let stopped = Instant::now();
    eventually("the standby to take over", WAIT, || async {
        (holder(&admin, lease).await.as_deref() == Some("staying")).then_some(())
    })
    .await;
    println!(
        "takeover after a graceful stop: {:?} (lease duration 15s)",
        stopped.elapsed()
    );
    // Ordered by the Lease's own times, not the test's clock: the standby acquired it while the
    // released Lease would still have been valid, so it did not wait for it to expire.
    let acquired = lease_spec(&admin, lease)
        .await
        .acquire_time
        .expect("the standby's acquire time")
        .0;
    assert!(
        acquired < valid_until,
        "the standby acquired the Lease at {acquired}, not before the released one would have expired ({valid_until})"
    );
}

/// The spec of Lease `lease`.
async fn lease_spec(admin: &Client, lease: &str) -> LeaseSpec {
    Api::<Lease>::namespaced(admin.clone(), SYSTEM_NAMESPACE)
        .get(lease)
        .await
        .expect("the Lease")
        .spec
        .expect("a Lease spec")
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

/// devportal touches Secrets only where it writes them now (issue 27): the old namespace's Secrets
/// are the operator's to remove (docs/operator-guide.md).
#[tokio::test]
async fn a_new_enforcement_namespace_moves_the_secrets_at_restart_and_leaves_the_old_ones_alone() {
    let _serial = exclusive_cluster().await;
    let (ns, admin) =
        fixtures::published_namespace("flag", Persona::Admin, ApprovalMode::Automatic).await;
    let (old, new) = (
        TestNamespace::new("enforce-old").await,
        TestNamespace::new("enforce-new").await,
    );
    let mut before = Devportal::controller(
        &[
            "--lease-name",
            "flag-old",
            "--enforcement-namespace",
            &old.name,
        ],
        &[],
    );
    let keys = request(&ns.name, "mine").await;
    let uid = keys.get("mine").await.unwrap().metadata.uid.unwrap();
    let written = eventually("the Secret in the old namespace", WAIT, || async {
        let mut found = enforcement_in(&admin, &old.name, &uid).await;
        (found.len() == 1).then(|| found.remove(0))
    })
    .await;
    before.kill();

    let _after = Devportal::controller(
        &[
            "--lease-name",
            "flag-new",
            "--enforcement-namespace",
            &new.name,
        ],
        &[],
    );
    let moved = eventually("the Secret to move to the new namespace", WAIT, || async {
        let mut there = enforcement_in(&admin, &new.name, &uid).await;
        (there.len() == 1).then(|| there.remove(0))
    })
    .await;
    assert_eq!(api_key(&moved), api_key(&written), "the same key");
    let left = enforcement_in(&admin, &old.name, &uid).await;
    assert_eq!(
        left.len(),
        1,
        "the old namespace is not devportal's any more"
    );
    let policy = Api::<devportal::resources::kuadrant::AuthPolicy>::namespaced(admin, &ns.name)
        .get("auth")
        .await
        .unwrap();
    support::authorino::indexed_key(&moved, &policy, &new.name);
}
