//! The pieces of the controller burst benchmark (`benches/controller_burst.rs`), one job each.

pub mod apimetrics;
pub mod audit;
pub mod compare;
pub mod namespace_loss;
pub mod options;
pub mod procs;
pub mod raw;
pub mod restart;
pub mod run;
pub mod watch;
pub mod workload;
