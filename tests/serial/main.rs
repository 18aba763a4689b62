//! The tests that must have a control plane to themselves, each on a bare control plane (no
//! webhook registered, no controller running between tests): the ones that kill or restart the
//! API server, etcd or a controller, start their own controllers or webhook replicas with their
//! own flags, register webhook configurations of their own, or write status that a running
//! controller would overwrite. The binary keeps three control planes and runs one test at a time on
//! each: every test takes one with [`support::serial::exclusive_cluster`] first and stops every
//! process it started before it returns, so the next test there starts from a quiet cluster. See
//! tests/README.md for where a new test goes.

#[path = "../support/mod.rs"]
mod support;

mod certs;
mod console_fixtures;
mod controller_ha;
mod enforcement_namespace_loss;
mod faults;
mod guardrail;
mod helm;
mod manifests;
mod namespace_overlay;
mod planted_secrets;
mod rbac_devportal;
mod rbac_personas;
mod resources;
mod rotation_crash;
mod secret_quota;
mod secret_safety;
mod webhook_bypass;
