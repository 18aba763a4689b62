//! Scale run of the controller: N APIKeys created in a burst against an automatic product.
//!
//! Reports the time until every enforcement Secret exists, the API writes the controller made per
//! key (counted from the apiserver's audit log, by verb and resource) and the controller's peak RSS.
//! Runs against its own local control plane on loopback; bounded by N and a timeout.
//!
//! `cargo bench --bench controller_burst` (1,000 keys) or `cargo bench --bench controller_burst -- 10000`.
//! With `--webhook` the admission webhook runs too (as its own `devportal webhook` process,
//! registered with the API server), as deployed: keys are then stamped and given their finalizer
//! at admission, as the admin user, with the per-user guardrail lifted for the run.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use devportal::resources::{APIKey, ApprovalMode, RequestedBy};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{PartialObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use support::{
    Devportal, Persona, TestNamespace, control_plane, control_plane_with_devportal, fixtures,
};

const TIMEOUT: Duration = Duration::from_secs(900);

/// A memory figure of process `pid` from /proc, in KiB: `VmHWM` (peak) or `VmRSS` (now).
fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| {
            v.trim_start_matches(':')
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Controller writes in the audit log, by `verb resource[/subresource]`.
fn writes(audit_log: &std::path::Path) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for line in std::fs::read_to_string(audit_log)
        .unwrap_or_default()
        .lines()
    {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let verb = event["verb"].as_str().unwrap_or("?");
        let resource = event["objectRef"]["resource"].as_str().unwrap_or("?");
        let sub = event["objectRef"]["subresource"]
            .as_str()
            .map(|s| format!("/{s}"))
            .unwrap_or_default();
        *counts.entry(format!("{verb} {resource}{sub}")).or_insert(0) += 1;
    }
    counts
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    let webhook = std::env::args().any(|a| a == "--webhook");
    let audit = std::env::temp_dir().join(format!("devportal-audit-{}.log", std::process::id()));
    // SAFETY: set before any other thread exists; read by the control plane started below.
    unsafe {
        std::env::set_var("DEVPORTAL_AUDIT_LOG", &audit);
        // Each of the 97 users requests about n / 97 keys; the webhook and the controller both
        // hold keys past this limit back.
        std::env::set_var("DEVPORTAL_MAX_KEYS_PER_USER_PER_PRODUCT", "1000000");
        if webhook {
            std::env::set_var("DEVPORTAL_ROLE", "webhook");
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(n, webhook, &audit));
}

async fn run(n: usize, webhook: bool, audit: &std::path::Path) {
    let cp = if webhook {
        control_plane_with_devportal()
    } else {
        control_plane()
    };
    let admin = cp.client(Persona::Admin).await;
    let ns = TestNamespace::new("burst").await;
    fixtures::published_product(&admin, &admin, &ns.name, ApprovalMode::Automatic).await;
    let controller =
        Devportal::controller(&["--lease-name", "burst"], &[("DEVPORTAL_LOG", "warn")]);
    // Let it lead and settle on the product before the burst.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let baseline = writes(audit);

    // Enforcement Secrets go to the Kuadrant namespace (no Kuadrant CR here: the default).
    let secrets = Api::<PartialObjectMeta<Secret>>::namespaced(admin.clone(), "kuadrant-system");
    let watch = watcher(
        secrets,
        watcher::Config::default().labels("devportal.kuadrant.io/role=enforcement"),
    )
    .applied_objects()
    .try_filter_map(|s| async move { Ok(s.metadata.name) });
    let done = tokio::spawn(async move {
        let mut seen = HashSet::new();
        let mut watch = std::pin::pin!(watch);
        while let Some(Ok(name)) = watch.next().await {
            seen.insert(name);
            if seen.len() == n {
                return Instant::now();
            }
        }
        panic!("the Secret watch ended early");
    });

    let keys = Api::<APIKey>::namespaced(admin.clone(), &ns.name);
    let started = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let keys = keys.clone();
            async move {
                let mut key = fixtures::key(
                    &format!("key-{i:05}"),
                    "toys",
                    if i % 2 == 0 { "gold" } else { "silver" },
                );
                // The webhook stamps the requester from the request's identity.
                key.spec.requested_by = (!webhook).then(|| RequestedBy {
                    user_id: format!("user-{}", i % 97),
                    email: None,
                });
                keys.create(&PostParams::default(), &key)
                    .await
                    .expect("create key");
            }
        })
        .buffer_unordered(32)
        .collect::<()>()
        .await;
    let created = started.elapsed();
    let finished = tokio::time::timeout(TIMEOUT, done)
        .await
        .expect("all Secrets within the timeout")
        .unwrap();
    let total = finished - started;
    // Let trailing status writes land before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = writes(audit);
    let peak = memory_kib(controller.pid(), "VmHWM");
    let now = memory_kib(controller.pid(), "VmRSS");

    let mut per_kind = Vec::new();
    let (mut objects, mut events) = (0, 0);
    for (what, count) in &after {
        let delta = count - baseline.get(what).copied().unwrap_or(0);
        if delta > 0 {
            match what.as_str() {
                "create events" => events += delta,
                // Lease renewals are the election's, not per key.
                "update leases" => {}
                _ => objects += delta,
            }
            per_kind.push(format!(
                "{what}: {delta} ({:.2}/key)",
                delta as f64 / n as f64
            ));
        }
    }
    println!(
        "controller burst: {n} APIKeys, automatic product, {}",
        if webhook {
            "admission webhook running"
        } else {
            "no admission webhook"
        }
    );
    println!(
        "  keys created in          {created:.2?} ({:.0}/s)",
        n as f64 / created.as_secs_f64()
    );
    println!(
        "  all enforcement Secrets  {total:.2?} after the first create ({:.0} keys/s)",
        n as f64 / total.as_secs_f64()
    );
    println!(
        "  controller object writes {objects} ({:.2}/key), Events {events} ({:.2}/key)",
        objects as f64 / n as f64,
        events as f64 / n as f64
    );
    for line in per_kind {
        println!("    {line}");
    }
    if std::env::var_os("HEAPTRACK_OUT").is_some() {
        println!("  controller memory        see the heaptrack profile (the pid is heaptrack's)");
    } else {
        println!("  controller peak RSS      {:.1} MiB", peak as f64 / 1024.0);
        println!("  controller RSS after     {:.1} MiB", now as f64 / 1024.0);
    }
    let _ = std::fs::remove_file(audit);
}
