//! The restart mode: once the burst has settled, the controller is stopped (SIGTERM) and a fresh
//! one started over the settled keys; what it writes from its start until 15 s after it is ready,
//! how long it takes to be ready and its memory.

use std::time::{Duration, Instant};

use super::apimetrics;
use super::audit::{AuditLog, Split};
use super::procs::cpu_seconds;
use crate::support::Devportal;
use crate::support::processes::memory_kib;

/// How long the audit log must stay unchanged for the burst to count as settled.
const QUIET: Duration = Duration::from_secs(5);
/// How long the fresh controller is watched after it is ready.
const AFTER_READY: Duration = Duration::from_secs(15);

/// Waits until the audit log has not grown for [`QUIET`] (at most `limit`), Lease renewals
/// aside.
pub async fn wait_quiet(audit: &mut AuditLog, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut last = audit.non_lease_total();
    let mut since = Instant::now();
    while since.elapsed() < QUIET {
        assert!(
            Instant::now() < deadline,
            "the controller kept writing for {limit:?} after the burst"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = audit.non_lease_total();
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
}

/// Polls the admin port's /readyz until it answers 200; the time it took from `started`.
async fn ready(admin_port: u16, started: Instant, limit: Duration) -> Duration {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("an HTTP client");
    let url = format!("http://127.0.0.1:{admin_port}/readyz");
    loop {
        if let Ok(response) = http.get(&url).send().await
            && response.status().is_success()
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "the restarted controller was not ready within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Stops `controller` once the burst is settled, starts a fresh one with `args` and `env`, prints
/// what it cost, and returns it (it keeps running until the run ends).
pub async fn measure(
    admin: &kube::Client,
    mut controller: Devportal,
    audit: &mut AuditLog,
    args: &[&str],
    env: &[(&str, &str)],
    n: usize,
    limit: Duration,
) -> Devportal {
    wait_quiet(audit, limit).await;
    let status = controller.terminate(Duration::from_secs(60));
    drop(controller);
    let before = audit.refresh().clone();
    let requests_before = apimetrics::scrape(admin).await;
    let started = Instant::now();
    let fresh = Devportal::controller(args, env);
    let to_ready = ready(fresh.admin_port, started, limit).await;
    tokio::time::sleep(AFTER_READY).await;
    let split = Split::between(&before, audit.refresh());
    let requests_after = apimetrics::scrape(admin).await;
    println!("restart over {n} settled keys:");
    println!(
        "  old controller stopped by SIGTERM: {}",
        status.map_or("still running after 60 s (killed)".into(), |s| s
            .to_string())
    );
    println!("  fresh controller ready    {to_ready:.2?} after its start (/readyz)");
    split.print(
        &format!(
            "its writes from start to {}s after ready",
            AFTER_READY.as_secs()
        ),
        0,
    );
    println!(
        "  key writes               {} (target 0)",
        split.object_total() + split.events
    );
    println!("  cross-check from apiserver_request_total (all clients, over the same span):");
    apimetrics::print_delta(&requests_before, &requests_after, 1);
    println!(
        "  its CPU                  {:.2} s; peak RSS {:.1} MiB, RSS now {:.1} MiB",
        cpu_seconds(fresh.pid()),
        memory_kib(fresh.pid(), "VmHWM") as f64 / 1024.0,
        memory_kib(fresh.pid(), "VmRSS") as f64 / 1024.0
    );
    fresh
}
