//! Integration-test support, shared by every test binary (tests/it, tests/controllers,
//! tests/kuadrant, tests/serial; tests/README.md says which is which): one real control plane per
//! test binary, a kube `Client` and a kubeconfig per persona, a fresh namespace per test, and the
//! fixtures and waits the tests share.
//!
//! The control plane is `hack/local-cluster.sh run`, started on first use with its own state
//! directory and free ports. It stays up while this process holds its stdin and tears itself down
//! (no process, no port left) when the test binary exits, however it exits. Set
//! `DEVPORTAL_TEST_KUBECONFIGS` to a directory holding kubeconfigs named after the personas to run
//! the same tests against an existing cluster instead.
//!
//! A test binary uses either [`control_plane()`] (the bare control plane) or
//! [`control_plane_with_devportal`] (the same, plus this crate's `devportal` binary serving the
//! admission webhook and registered with the API server), never both. In tests/it/, the binary
//! that shares `devportal run`, [`control_plane()`] is the one with devportal too.
//!
//! Where to look:
//! - [`control_plane`](mod@control_plane): the control plane, kubectl and clients per persona;
//! - [`access`]: what a persona may do (`kubectl auth can-i`, SubjectAccessReview, 403s);
//! - [`personas`]: who makes a request;
//! - [`plugin`]: the `kubectl-devportal` binary, run with a persona's or an impersonating kubeconfig;
//! - [`namespaces`]: [`TestNamespace`], a namespace per test with the personas bound in it;
//! - [`processes`]: [`Devportal`], a devportal process a test starts itself, and the controller a
//!   test binary shares;
//! - [`observability`]: the shipped dashboard's and alerts' PromQL, as the tests read it;
//! - [`prometheus`]: a real Prometheus server scraping devportal (and the API server), and queries;
//! - [`serial`]: the control planes of the tests that must have one to themselves, one test at a
//!   time on each;
//! - [`waits`]: [`eventually`], bounded polling;
//! - [`front_end`]: a portal front end's ServiceAccount, token, impersonation grants;
//! - [`backstage`]: the Kuadrant Backstage plugin's calls, replayed;
//! - [`portal`]: the setting of the plugin replay: an owned product, the shipped front end;
//! - [`fixtures`]: sample objects (route, policies, product, key) and the usual platform setup;
//! - [`https`]: a keep-alive HTTPS client for the webhook's server;
//! - [`proxy`]: a round-robin proxy in front of several webhook replicas;
//! - [`replicas`]: webhook replicas behind that proxy, registered, plus a controller;
//! - [`reviews`]: the setting of tests/it/review_order.rs (reviews as the console writes them);
//! - [`secrets`]: devportal's two API-key Secrets of a key;
//! - [`labels`]: a tenant running their own API, and waits of tests/it/shared_labels.rs;
//! - [`manifests`]: `manifests/` rendered by `kubectl kustomize`;
//! - [`helm`]: the chart charts/devportal with the `helm` built from hack/helm, and releases of it;
//! - [`policies`]: APIKeyPolicies scoped to one test's namespace, and waits for the webhook to see them;
//! - [`webhook_server`]: the webhook's HTTPS server in-process, with an in-memory cluster.
#![allow(dead_code, unused_imports)] // each test binary uses a different part of support and its re-exports

pub mod access;
pub mod authorino;
pub mod backstage;
pub mod console;
pub mod control_plane;
pub mod fixtures;
pub mod front_end;
pub mod helm;
pub mod https;
pub mod labels;
pub mod manifests;
pub mod namespaces;
pub mod observability;
pub mod personas;
pub mod plugin;
pub mod policies;
pub mod portal;
pub mod processes;
pub mod prometheus;
pub mod proxy;
pub mod replicas;
pub mod reviews;
pub mod secrets;
pub mod serial;
pub mod tools;
pub mod waits;
pub mod webhook_server;

// What the tests reach for most, at `support::`.
pub use control_plane::{
    ControlPlane, SYSTEM_NAMESPACE, client, control_plane, control_plane_with_devportal,
    control_plane_with_devportal_binary, repo_root, stderr_of_failure, stdout_of,
};
pub use namespaces::TestNamespace;
pub use personas::Persona;
pub use processes::{Devportal, free_port};
pub use waits::eventually;
