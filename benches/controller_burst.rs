//! Scale run of the controller: N APIKeys created in a burst against an automatic product, each run
//! on its own local control plane (on loopback, bounded by N and a timeout that grows with N).
//!
//! Reports the time until every enforcement Secret exists, keys/s, the writes the controller
//! identity made (the API server's audit log, by verb and resource), every client's API requests
//! per key (the API server's `apiserver_request_total`, by verb and resource), the CPU seconds of
//! the controller, the webhook, the API server, etcd and this harness, and the controller's RSS.
//!
//! ```sh
//! cargo bench --bench controller_burst -- 1000                        # devportal's controller
//! cargo bench --bench controller_burst -- 1000 --webhook              # with the admission webhook
//! cargo bench --bench controller_burst -- 1000 --ideal --webhook      # the ideal pipeline alone
//! cargo bench --bench controller_burst -- 1000 --compare --webhook    # ideal, then devportal
//! cargo bench --bench controller_burst -- 1000 --restart --webhook    # then a controller restart
//! cargo bench --bench controller_burst -- 1000 --namespace-loss       # then the enforcement
//!                                                                     # namespace deleted, re-created
//! cargo bench --bench controller_burst -- 1000 --raw                  # 2×N plain Secret creates
//! ```
//!
//! With `--webhook` the admission webhook runs too (as its own `devportal webhook` process,
//! registered with the API server), as deployed: keys are then stamped and given their finalizer
//! at admission, as the admin user, with the per-user guardrail lifted for the run. See
//! docs/benchmarks.md for what each mode does.

#[path = "../tests/support/mod.rs"]
mod support;

mod burst;

use burst::options::Options;

fn main() {
    let opts = Options::from_args();
    if opts.compare {
        burst::compare::run(&opts);
        return;
    }
    let audit = std::env::temp_dir().join(format!("devportal-audit-{}.log", std::process::id()));
    // SAFETY: set before any other thread exists; read by the control plane started below.
    unsafe {
        std::env::set_var("DEVPORTAL_AUDIT_LOG", &audit);
        // Each of the 97 users requests about n / 97 keys; the webhook and the controller both
        // hold keys past this limit back.
        std::env::set_var("DEVPORTAL_MAX_KEYS_PER_USER_PER_PRODUCT", "1000000");
        if opts.webhook {
            std::env::set_var("DEVPORTAL_ROLE", "webhook");
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(burst::run::run(&opts, &audit));
}
