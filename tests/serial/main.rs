//! The tests that must have the control plane to themselves, on the bare control plane (no
//! webhook registered, no controller running between tests): the ones that kill or restart the
//! API server, etcd or a controller, start their own controllers or webhook replicas with their
//! own flags, register webhook configurations of their own, or write status that a running
//! controller would overwrite. Every test takes [`support::serial::ONE_AT_A_TIME`] first and
//! stops every process it started before it returns, so the next test starts from a quiet
//! cluster. See tests/README.md for where a new test goes.

#[path = "../support/mod.rs"]
mod support;

mod certs;
mod console_fixtures;
mod controller_ha;
mod faults;
mod guardrail;
mod manifests;
mod planted_secrets;
mod rbac_devportal;
mod rbac_personas;
mod resources;
mod rotation_crash;
mod secret_safety;
mod webhook_bypass;
