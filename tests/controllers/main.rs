//! The controller on a bare control plane (no webhook registered), every test in its own
//! namespace: one `devportal controller` process ([`support::processes::shared_controller`],
//! Lease `controller-tests`, 127.0.0.1 on its fetch allow-list) serves every test of this binary.
//! Objects are created as the tests need them, without the webhook's admission, so the tests see
//! what the controller alone does with them. See tests/README.md for where a new test goes.

#[path = "../support/mod.rs"]
mod support;

mod controller;
mod discovery;
