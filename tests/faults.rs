//! The controller through the control plane's faults, on the real control plane the tests start:
//! kube-apiserver or etcd killed and restarted in the middle of a burst of keys, SIGTERM at any
//! moment of a replica's life, and the leader killed mid-burst. Every burst ends with the same
//! check: each key Approved, with exactly one enforcement Secret and one consumer Secret holding
//! the same value. The figures printed here are the ones docs/operations.md quotes; the tests
//! assert convergence, not speed. The tests run one at a time: they stop shared components.

mod support;

use std::collections::HashMap;
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
use support::{Devportal, Persona, TestNamespace, control_plane, eventually, fixtures};
use tokio::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());
/// Keys per burst.
const BURST: usize = 200;
/// Concurrent creators, as a busy portal would have.
const CREATORS: usize = 16;
/// Generous bound for convergence; the printed figures are what matters.
const CONVERGE: Duration = Duration::from_secs(90);

/// Two controller replicas behind one Lease, with short Lease timings.
fn replicas(lease: &str) -> (Devportal, Devportal) {
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
    (start(&format!("{lease}-a")), start(&format!("{lease}-b")))
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
/// (it may be down for part of the burst). `created` counts keys written so far.
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
                loop {
                    match keys.create(&PostParams::default(), &key).await {
                        Ok(_) => break,
                        Err(kube::Error::Api(status)) if status.code == 409 => break,
                        Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
                created.fetch_add(1, Ordering::Relaxed);
            }
        })
    });
    futures::future::join_all(workers).await;
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

/// Bursts `BURST` keys at two replicas, runs `fault` once `BURST / 4` keys are in (it returns
/// when the control plane serves again), and waits until every key settles. Returns how long
/// settling took after the fault ended.
async fn burst_through(prefix: &str, fault: impl AsyncFnOnce()) -> Duration {
    let ns = TestNamespace::new(prefix).await;
    let admin = control_plane().client(Persona::Admin).await;
    fixtures::published_product(&admin, &admin, &ns.name, ApprovalMode::Automatic).await;
    let (first, second) = replicas(prefix);
    let created = Arc::new(AtomicUsize::new(0));
    let names = (0..BURST).map(|i| format!("key-{i:04}")).collect();
    let creating = tokio::spawn(create_keys(ns.name.clone(), names, created.clone()));
    eventually("a quarter of the burst to be created", CONVERGE, || async {
        (created.load(Ordering::Relaxed) >= BURST / 4).then_some(())
    })
    .await;
    fault().await;
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
    drop((first, second));
    settled
}

#[tokio::test]
async fn every_key_converges_after_the_api_server_is_killed_mid_burst() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let settled = burst_through("apiserver-fault", async || {
        local_cluster(&["kill", "kube-apiserver"]);
        tokio::time::sleep(Duration::from_secs(5)).await;
        local_cluster(&["start", "kube-apiserver"]);
    })
    .await;
    println!("kube-apiserver down 5 s: all {BURST} keys settled {settled:?} after it was ready");
}

#[tokio::test]
async fn every_key_converges_after_etcd_is_killed_mid_burst() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let settled = burst_through("etcd-fault", async || {
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
    let _serial = ONE_AT_A_TIME.lock().await;
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

#[tokio::test]
async fn sigterm_while_campaigning_exits_at_once() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let admin = control_plane().client(Persona::Admin).await;
    let lease = "campaign";
    let _leader =
        Devportal::controller(&["--lease-name", lease, "--lease-identity", "holder"], &[]);
    eventually("the first replica to lead", CONVERGE, || async {
        (holder(&admin, lease).await.as_deref() == Some("holder")).then_some(())
    })
    .await;
    let mut candidate = Devportal::controller(
        &["--lease-name", lease, "--lease-identity", "candidate"],
        &[],
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let asked = Instant::now();
    let status = candidate
        .terminate(Duration::from_secs(25))
        .unwrap_or_else(|| {
            panic!(
                "still running 25 s after SIGTERM:\n{}",
                candidate.log_text()
            )
        });
    println!("SIGTERM while campaigning: exited in {:?}", asked.elapsed());
    assert!(status.success(), "{status}");
    assert_eq!(holder(&admin, lease).await.as_deref(), Some("holder"));
}

#[tokio::test]
async fn the_standby_finishes_a_burst_when_the_leader_is_killed() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let admin = control_plane().client(Persona::Admin).await;
    let lease = "leader-fault";
    let settled = burst_through(lease, async || {
        let leader = holder(&admin, lease).await.expect("a leader");
        // The replicas' pids are registered with the control plane; kill the leader by identity.
        let pid = leader_pid(&leader);
        Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("kill runs");
    })
    .await;
    println!("leader SIGKILLed: all {BURST} keys settled {settled:?} later (lease duration 6 s)");
}

/// The pid of the controller process started with `--lease-identity identity`.
fn leader_pid(identity: &str) -> u32 {
    let output = Command::new("pgrep")
        .args(["-f", "--", &format!("--lease-identity {identity}")])
        .output()
        .expect("pgrep runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .and_then(|line| line.trim().parse().ok())
        .unwrap_or_else(|| panic!("no process for {identity}"))
}
