//! One run on its own local control plane: devportal's controller, the ideal pipeline or the raw
//! Secret creates; then the figures (time, keys/s, writes, API requests, CPU, memory).

use std::path::Path;
use std::time::{Duration, Instant};

use devportal::resources::{APIKey, ApprovalMode};
use kube::Api;

use super::audit::{AuditLog, Split};
use super::options::{CONCURRENCY, Mode, Options};
use super::procs::{RssSampler, Watched, component_pid};
use super::workload::{Ideal, burst, create_key, product_status_then_no_controller};
use super::{apimetrics, namespace_loss, raw, restart, watch};
use crate::support::processes::memory_kib;
use crate::support::{
    Devportal, Persona, TestNamespace, control_plane, control_plane_with_devportal, fixtures,
};

/// The controller's arguments and environment (the restart's fresh one gets the same).
const CONTROLLER_ARGS: &[&str] = &["--lease-name", "burst"];
const CONTROLLER_ENV: &[(&str, &str)] = &[("DEVPORTAL_LOG", "warn")];
/// Left for trailing status writes before the writes are counted.
const SETTLE: Duration = Duration::from_secs(3);

/// Runs `opts.mode` once and prints its report, ending with a `summary:` line.
pub async fn run(opts: &Options, audit_path: &Path) {
    let n = opts.n;
    let cp = if opts.webhook {
        control_plane_with_devportal()
    } else {
        control_plane()
    };
    let admin = cp.client(Persona::Admin).await;
    let ns = TestNamespace::new("burst").await;
    fixtures::published_product(&admin, &admin, &ns.name, ApprovalMode::Automatic).await;

    if opts.mode == Mode::Ideal {
        product_status_then_no_controller(&admin, &ns.name, CONTROLLER_ARGS).await;
    }
    let state = cp.state_dir();
    let mut procs = vec![
        (
            "kube-apiserver",
            component_pid(state, "kube-apiserver").expect("apiserver pid"),
        ),
        ("etcd", component_pid(state, "etcd").expect("etcd pid")),
    ];
    if opts.webhook {
        procs.push(("devportal webhook", cp.devportal_pid()));
    }
    procs.push(("bench harness", std::process::id()));
    let controller = (opts.mode == Mode::Devportal).then(|| {
        let controller = Devportal::controller(CONTROLLER_ARGS, CONTROLLER_ENV);
        procs.insert(0, ("controller", controller.pid()));
        controller
    });
    let procs = Watched(procs);
    // The split of the controller's RSS at its highest (`VmHWM` gives only the total).
    let rss = controller.as_ref().map(|c| RssSampler::start(c.pid()));
    // Let the controller lead and settle on the product before the burst.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut audit = AuditLog::new(audit_path.to_path_buf());
    let baseline = audit.refresh().clone();
    let requests_before = apimetrics::scrape(&admin).await;
    let cpu_before = procs.sample();
    let started = Instant::now();

    let mode = opts.mode;
    let mut requests_written = None;
    let (created, finished) = if mode == Mode::Raw {
        let took = raw::create_secrets(&admin, &ns.name, 2 * n).await;
        (took, took)
    } else {
        let done = watch::all_enforcement_secrets(&admin, n);
        requests_written =
            (mode == Mode::Devportal).then(|| watch::all_requests_written(&admin, &ns.name, n));
        match mode {
            Mode::Ideal => {
                let ideal = Ideal::new(
                    &admin,
                    &cp.client(Persona::Controller).await,
                    &ns.name,
                    opts.webhook,
                );
                burst(n, |i| ideal.one(i)).await;
            }
            _ => {
                let keys = Api::<APIKey>::namespaced(admin.clone(), &ns.name);
                burst(n, |i| {
                    let keys = keys.clone();
                    async move {
                        create_key(&keys, i, opts.webhook).await;
                    }
                })
                .await;
            }
        }
        let created = started.elapsed();
        let finished = tokio::time::timeout(opts.timeout(), done)
            .await
            .expect("all enforcement Secrets within the timeout")
            .expect("the watch task");
        (created, finished - started)
    };
    let wall = started.elapsed().as_secs_f64();
    let cpu_after = procs.sample();
    tokio::time::sleep(SETTLE).await;
    let split = Split::between(&baseline, audit.refresh());
    let requests_after = apimetrics::scrape(&admin).await;

    let webhook = if opts.webhook {
        "admission webhook running"
    } else {
        "no admission webhook"
    };
    println!(
        "controller burst [{}]: {n} APIKeys, automatic product, {webhook}, {CONCURRENCY} in flight",
        mode.name()
    );
    let rate = if mode == Mode::Raw {
        let rate = (2 * n) as f64 / created.as_secs_f64();
        println!(
            "  {} plain Secrets created in {created:.2?} ({rate:.0}/s)",
            2 * n
        );
        rate
    } else {
        println!(
            "  keys created in          {created:.2?} ({:.0}/s)",
            n as f64 / created.as_secs_f64()
        );
        let rate = n as f64 / finished.as_secs_f64();
        println!(
            "  all enforcement Secrets  {finished:.2?} after the first create ({rate:.1} keys/s)"
        );
        rate
    };
    split.print("controller-identity writes (audit log)", n);
    apimetrics::print_delta(&requests_before, &requests_after, n);
    procs.print_cpu(&cpu_before, &cpu_after, n, wall);
    if let Some(requests_written) = requests_written {
        // The owners' copies of automatically approved keys follow enforcement (the inbox's
        // second lane): when is the last one written, and what does the controller hold then?
        let written = tokio::time::timeout(opts.timeout(), requests_written)
            .await
            .expect("every APIKeyRequest within the timeout")
            .expect("the request watch task");
        println!(
            "  all owners' copies       {:.2?} after the first create (APIKeyRequests with a status)",
            written - started
        );
        tokio::time::sleep(SETTLE).await;
        Split::between(&baseline, audit.refresh()).print(
            "controller-identity writes up to the last owner's copy (audit log)",
            n,
        );
    }
    let highest = rss.map(RssSampler::stop).unwrap_or_default();
    if let Some(controller) = &controller {
        if std::env::var_os("HEAPTRACK_OUT").is_some() {
            println!(
                "  controller memory        see the heaptrack profile (the pid is heaptrack's)"
            );
        } else {
            let mib = |kib: u64| kib as f64 / 1024.0;
            println!(
                "  controller peak RSS      {:.1} MiB, RSS after {:.1} MiB",
                mib(memory_kib(controller.pid(), "VmHWM")),
                mib(memory_kib(controller.pid(), "VmRSS"))
            );
            println!(
                "  controller RSS split     highest sampled (every 200 ms) {:.1} MiB = {:.1} MiB anonymous + {:.1} MiB file-backed",
                mib(highest.total),
                mib(highest.anon),
                mib(highest.file)
            );
        }
    }
    println!("summary: mode={} n={n} rate={rate:.3}", mode.name());

    // Whichever controller runs last is kept running until the run ends.
    let _controller = match (opts.restart, controller) {
        (true, Some(controller)) => Some(
            restart::measure(
                &admin,
                controller,
                &mut audit,
                CONTROLLER_ARGS,
                CONTROLLER_ENV,
                n,
                opts.timeout(),
            )
            .await,
        ),
        (_, controller) => controller,
    };
    if opts.namespace_loss && mode == Mode::Devportal {
        namespace_loss::measure(
            &admin,
            &mut audit,
            (&ns.name, n),
            opts.gone_for,
            opts.timeout(),
        )
        .await;
    }
    audit.remove();
}
