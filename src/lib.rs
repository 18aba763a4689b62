//! devportal: a Kubernetes-native developer portal back end.
//!
//! API owners publish [`resources::APIProduct`]s on top of Gateway API routes; consumers request
//! [`resources::APIKey`]s. This crate holds the resource models, the CRD generator, the admission
//! webhook ([`webhook`]), the CLI that the `devportal` binary runs, and the `kubectl-devportal`
//! plugin ([`plugin`]).

pub mod admin;
pub mod certs;
pub mod cli;
pub mod conditions;
pub mod controller;
pub mod crds;
pub mod digest;
pub mod discovery;
pub mod error;
pub mod flags;
pub mod key_limit;
pub mod keys;
pub mod kube_ext;
pub mod logging;
pub mod metrics;
pub mod names;
pub mod plugin;
pub mod policy;
pub mod resources;
pub mod review_order;
pub mod secrets;
pub mod selector;
pub mod tls;
pub mod token_bucket;
pub mod watches;
pub mod webhook;

pub use error::{Error, Result};
