//! The signals the reconcilers share: caches synced, leadership, shutdown.

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::watches::Synced;

/// What decides when the reconcilers may write, and when they stop.
pub(super) struct Signals {
    /// Every watch has listed once.
    pub(super) synced: Synced,
    /// This replica holds the Lease.
    pub(super) leader: watch::Receiver<bool>,
    /// The process is stopping.
    pub(super) shutdown: CancellationToken,
}
