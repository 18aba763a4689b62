//! The controller through the control plane's faults, on the real control plane the tests start:
//! kube-apiserver or etcd killed and restarted in the middle of a burst of keys, SIGTERM at any
//! moment of a replica's life, and the leader killed mid-burst. Every burst ends with the same
//! check: each key Approved, with exactly one enforcement Secret and one consumer Secret holding
//! the same value. The figures printed here are the ones docs/operations.md quotes; the tests
//! assert convergence, not speed. The tests run one at a time: they stop shared components.

use crate::support;

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use devportal::names::{API_KEY_DATA, APIKEY_ANNOTATION, MANAGED_SELECTOR, ROLE_LABEL};
use devportal::resources::{APIKey, APIKeyPhase, ApprovalMode, RequestedBy};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use support::serial::exclusive_cluster;
use support::{Devportal, Persona, TestNamespace, control_plane, eventually, fixtures};

/// Keys per burst.
const BURST: usize = 200;
/// Concurrent creators, as a busy portal would have.
const CREATORS: usize = 16;
/// Generous bound for convergence; the printed figures are what matters.
const CONVERGE: Duration = Duration::from_secs(90);

/// Two controller replicas behind one Lease, with short Lease timings: identities `<lease>-a` and
/// `<lease>-b`.
fn replicas(lease: &str) -> [Devportal; 2] {
    let args = |identity: &str| {
        [
            "--lease-name",
            lease,
            "--lease-identity",
            identity,
            "--lease-duration",
            "6s",
            "--lease-renew-deadline",
            "4s",
            "--lease-retry-period",
            "1s",
            // One consumer requests every key of a burst: past the default key limit, the
            // controller would hold all but five back.
            "--max-keys-per-user-per-product",
            "1000000",
        ]
        .map(String::from)
    };
    let start = |identity: &str| {
        let args = args(identity);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Devportal::controller(&args, &[])
    };
    [start(&format!("{lease}-a")), start(&format!("{lease}-b"))]
}

/// `hack/local-cluster.sh COMMAND ARGS` on the tests' control plane.
fn local_cluster(args: &[&str]) {
    let status = Command::new(support::repo_root().join("hack/local-cluster.sh"))
        .args(args)
        .env("DEVPORTAL_LOCAL_DIR", control_plane().state_dir())
        .status()
        .expect("hack/local-cluster.sh runs");
    assert!(status.success(), "hack/local-cluster.sh {args:?}: {status}");
}

/// Creates `names` as the consumer with 16 workers, retrying each until the API server takes it
/// (it may be down for part of the burst), for at most [`CONVERGE`] per key: a key the API server
/// still refuses then fails the test with the last error. `created` counts keys written so far.
async fn create_keys(ns: String, names: Vec<String>, created: Arc<AtomicUsize>) {
    let consumer = control_plane().client(Persona::Consumer).await;
    let queue = Arc::new(std::sync::Mutex::new(names));
    let workers = (0..CREATORS).map(|_| {
        let (queue, created) = (queue.clone(), created.clone());
        let keys = Api::<APIKey>::namespaced(consumer.clone(), &ns);
        tokio::spawn(async move {
            loop {
                let Some(name) = queue.lock().unwrap().pop() else {
                    return;
                };
                let mut key = fixtures::key(&name, "toys", "gold");
                key.spec.requested_by = Some(RequestedBy {
                    user_id: "consumer".into(),
                    email: None,
                });
                let deadline = Instant::now() + CONVERGE;
                loop {
                    match keys.create(&PostParams::default(), &key).await {
                        Ok(_) => break,
                        Err(kube::Error::Api(status)) if status.code == 409 => break,
                        Err(_) if Instant::now() < deadline => {
                            tokio::time::sleep(Duration::from_millis(200)).await
                        }
                        Err(error) => panic!("key {name} not created within {CONVERGE:?}: {error}"),
                    }
                }
                created.fetch_add(1, Ordering::Relaxed);
            }
        })
    });
    for worker in futures::future::join_all(workers).await {
        worker.expect("a creator fails the test when a key cannot be created");
    }
}

/// Keys that are not yet Approved with one enforcement and one consumer Secret of equal value;
/// panics on a key with two Secrets of a role (a duplicate is never acceptable).
async fn unsettled(admin: &Client, ns: &str) -> Vec<String> {
    let Ok(keys) = Api::<APIKey>::namespaced(admin.clone(), ns)
        .list(&ListParams::default())
        .await
    else {
        return vec!["<list failed>".into()];
    };
    let Ok(secrets) = Api::<Secret>::all(admin.clone())
        .list(&ListParams::default().labels(MANAGED_SELECTOR))
        .await
    else {
        return vec!["<list failed>".into()];
    };
    let mut by_key: HashMap<String, Vec<(String, Vec<u8>)>> = HashMap::new();
    for secret in secrets.items {
        let meta = &secret.metadata;
        let (Some(owner), Some(role)) = (
            meta.annotations
                .as_ref()
                .and_then(|a| a.get(APIKEY_ANNOTATION)),
            meta.labels.as_ref().and_then(|l| l.get(ROLE_LABEL)),
        ) else {
            continue;
        };
        let value = secret.data.as_ref().and_then(|d| d.get(API_KEY_DATA));
        by_key
            .entry(owner.clone())
            .or_default()
            .push((role.clone(), value.map(|v| v.0.clone()).unwrap_or_default()));
    }
    let mut pending = Vec::new();
    for key in keys.items {
        let name = key.metadata.name.clone().unwrap_or_default();
        let copies = by_key.remove(&format!("{ns}/{name}")).unwrap_or_default();
        for role in ["enforcement", "consumer"] {
            let n = copies.iter().filter(|(r, _)| r == role).count();
            assert!(n <= 1, "key {name} has {n} {role} Secrets: {copies:?}");
        }
        let approved = key.status.and_then(|s| s.phase) == Some(APIKeyPhase::Approved);
        let same_value = copies.len() == 2 && copies[0].1 == copies[1].1 && !copies[0].1.is_empty();
        if !approved || !same_value {
            pending.push(name);
        }
    }
    pending
}

/// Bursts `BURST` keys at two replicas, runs `fault` on them once `BURST / 4` keys are in (it
/// returns when the control plane serves again), and waits until every key settles. Returns how
/// long settling took after the fault ended.
async fn burst_through(prefix: &str, fault: impl AsyncFnOnce(&mut [Devportal; 2])) -> Duration {
    let ns = TestNamespace::new(prefix).await;
    let admin = control_plane().client(Persona::Admin).await;
    fixtures::published_product(&admin, &admin, &ns.name, ApprovalMode::Automatic).await;
    let mut replicas = replicas(prefix);
    let created = Arc::new(AtomicUsize::new(0));
    let names = (0..BURST).map(|i| format!("key-{i:04}")).collect();
    let creating = tokio::spawn(create_keys(ns.name.clone(), names, created.clone()));
    eventually("a quarter of the burst to be created", CONVERGE, || async {
        (created.load(Ordering::Relaxed) >= BURST / 4).then_some(())
    })
    .await;
    fault(&mut replicas).await;
    let recovered = Instant::now();
    creating.await.expect("the creators finish");
    println!(
        "{prefix}: the rest of the burst was created {:?} after the fault ended",
        recovered.elapsed()
    );
    eventually("every key to settle", CONVERGE, || async {
        let left = unsettled(&admin, &ns.name).await;
        left.is_empty().then_some(())
    })
    .await;
    let settled = recovered.elapsed();
    // Clean up while the controllers still run, so the next test's controllers do not spend
    // their first seconds on this burst's finalizers.
    let keys = Api::<APIKey>::namespaced(admin.clone(), &ns.name);
    keys.delete_collection(&Default::default(), &ListParams::default())
        .await
        .expect("delete the burst");
    eventually("the burst's keys to be gone", CONVERGE, || async {
        keys.list(&ListParams::default())
            .await
            .ok()
            .filter(|l| l.items.is_empty())
            .map(|_| ())
    })
    .await;
    drop(replicas);
    settled
}

#[tokio::test]
async fn every_key_converges_after_the_api_server_is_killed_mid_burst() {
    let _serial = exclusive_cluster().await;
    let settled = burst_through("apiserver-fault", async |_: &mut [Devportal; 2]| {
        local_cluster(&["kill", "kube-apiserver"]);
        tokio::time::sleep(Duration::from_secs(5)).await;
        local_cluster(&["start", "kube-apiserver"]);
    })
    .await;
    println!("kube-apiserver down 5 s: all {BURST} keys settled {settled:?} after it was ready");
}

#[tokio::test]
async fn every_key_converges_after_etcd_is_killed_mid_burst() {
    let _serial = exclusive_cluster().await;
    let settled = burst_through("etcd-fault", async |_: &mut [Devportal; 2]| {
        local_cluster(&["kill", "etcd"]);
        tokio::time::sleep(Duration::from_secs(5)).await;
        local_cluster(&["start", "etcd"]);
    })
    .await;
    println!("etcd down 5 s: all {BURST} keys settled {settled:?} after it was back");
}

async fn holder(admin: &Client, lease: &str) -> Option<String> {
    Api::<Lease>::namespaced(admin.clone(), "devportal-system")
        .get_opt(lease)
        .await
        .ok()??
        .spec?
        .holder_identity
        .filter(|h| !h.is_empty())
}

#[tokio::test]
async fn sigterm_right_after_winning_the_lease_exits_and_releases_it() {
    let _serial = exclusive_cluster().await;
    let admin = control_plane().client(Persona::Admin).await;
    for (round, delay_ms) in [0u64, 200, 500, 1_500].into_iter().enumerate() {
        let lease = format!("sigterm-{round}");
        let mut replica = Devportal::controller(
            &["--lease-name", &lease, "--lease-identity", "short-lived"],
            &[],
        );
        eventually("the replica to take the Lease", CONVERGE, || async {
            (holder(&admin, &lease).await.as_deref() == Some("short-lived")).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let asked = Instant::now();
        let status = replica
            .terminate(Duration::from_secs(25))
            .unwrap_or_else(|| panic!("still running 25 s after SIGTERM:\n{}", replica.log_text()));
        println!(
            "SIGTERM {delay_ms} ms after winning the Lease: exited in {:?}",
            asked.elapsed()
        );
        assert!(status.success(), "{status}\n{}", replica.log_text());
        assert_eq!(holder(&admin, &lease).await, None, "the Lease was released");
    }
}

/// The campaigning replica's retry period: it asks for the Lease again only this long after each
/// try, so a replica that waited for its next try before acting on SIGTERM would take up to this.
const CAMPAIGN_RETRY: Duration = Duration::from_secs(20);

#[tokio::test]
async fn sigterm_while_campaigning_exits_at_once() {
    let _serial = exclusive_cluster().await;
    let admin = control_plane().client(Persona::Admin).await;
    let lease = "campaign";
    let _leader =
        Devportal::controller(&["--lease-name", lease, "--lease-identity", "holder"], &[]);
    eventually("the first replica to lead", CONVERGE, || async {
        (holder(&admin, lease).await.as_deref() == Some("holder")).then_some(())
    })
    .await;
    let retry = format!("{}s", CAMPAIGN_RETRY.as_secs());
    let (renew, duration) = (
        format!("{}s", CAMPAIGN_RETRY.as_secs() * 2),
        format!("{}s", CAMPAIGN_RETRY.as_secs() * 3),
    );
    let mut candidate = Devportal::controller(
        &[
            "--lease-name",
            lease,
            "--lease-identity",
            "candidate",
            "--lease-retry-period",
            &retry,
            "--lease-renew-deadline",
            &renew,
            "--lease-duration",
            &duration,
        ],
        &[],
    );
    let livez = format!("http://127.0.0.1:{}/livez", candidate.admin_port);
    eventually("the candidate to be up", CONVERGE, || async {
        reqwest::get(&livez)
            .await
            .ok()?
            .status()
            .is_success()
            .then_some(())
    })
    .await;
    // Its first try comes as it starts; it then waits out its retry period.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let asked = Instant::now();
    // A quarter of the retry period: the candidate must not sleep out its wait for the next try.
    let status = candidate.terminate(CAMPAIGN_RETRY / 4).unwrap_or_else(|| {
        panic!(
            "still running {:?} after SIGTERM, waiting for its next try ({CAMPAIGN_RETRY:?}):\n{}",
            CAMPAIGN_RETRY / 4,
            candidate.log_text()
        )
    });
    println!("SIGTERM while campaigning: exited in {:?}", asked.elapsed());
    assert!(status.success(), "{status}");
    assert_eq!(holder(&admin, lease).await.as_deref(), Some("holder"));
}

#[tokio::test]
async fn the_standby_finishes_a_burst_when_the_leader_is_killed() {
    let _serial = exclusive_cluster().await;
    let admin = control_plane().client(Persona::Admin).await;
    let lease = "leader-fault";
    let settled = burst_through(lease, async |replicas: &mut [Devportal; 2]| {
        let leader = holder(&admin, lease).await.expect("a leader");
        let identities = [format!("{lease}-a"), format!("{lease}-b")];
        let killed = identities
            .iter()
            .position(|identity| *identity == leader)
            .unwrap_or_else(|| panic!("the leader {leader} is one of {identities:?}"));
        let standby = &identities[1 - killed];
        replicas[killed].kill();
        let status = replicas[killed]
            .wait_exit(Duration::from_secs(5))
            .expect("the leader is dead");
        assert_eq!(status.signal(), Some(libc::SIGKILL), "killed: {status}");
        eventually("the standby to take the Lease", CONVERGE, || async {
            (holder(&admin, lease).await.as_ref() == Some(standby)).then_some(())
        })
        .await;
    })
    .await;
    println!("leader SIGKILLed: all {BURST} keys settled {settled:?} later (lease duration 6 s)");
}
