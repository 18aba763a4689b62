//! The integration tests that share one control plane with `devportal run` (webhook registered
//! with failurePolicy Fail, controller leading), started on first use by
//! [`support::control_plane_with_devportal`]. Every test works in its own namespace
//! ([`support::TestNamespace`]) and may run alongside any other test here, so a test in this
//! binary never stops, restarts or reconfigures the shared devportal or the control plane, never
//! changes cluster-wide objects other tests rely on, and asserts nothing about counters that the
//! other tests move too (a metric of its own namespace's objects, or a before/after difference
//! that only it can cause). Tests that need that go to `tests/serial/` (one at a time, a bare
//! control plane); see tests/README.md for where a new test goes.
//!
//! One module per topic; the tests that need no cluster at all (PromQL, the CEL rule, the HTTPS
//! server in-process, the Containerfile) live here too, as this binary is built anyway.

#[path = "../support/mod.rs"]
mod support;

mod backstage_plugin;
mod console_plugin;
mod expiry_rule;
mod fetch_policy;
mod front_ends;
mod hardening;
mod image;
mod inbox_truth;
mod kubectl_plugin;
mod metrics;
mod observability;
mod observability_live;
mod owner_inbox;
mod policies;
mod retries;
mod review_integrity;
mod review_order;
mod rotation;
mod server;
mod shared_labels;
mod tenant_input;
mod upstream_schema;
mod webhook;
mod webhook_transport;
