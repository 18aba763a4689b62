//! The exclusive control planes of the tests that must have a cluster to themselves
//! (tests/serial/): they stop components, start their own controllers or register their own
//! webhooks, which would otherwise act on each other's objects.
//!
//! The binary keeps [`LANES`] bare control planes and runs one test at a time on each: a test
//! takes whichever is free with [`exclusive_cluster`], and from then on every
//! [`control_plane()`](super::control_plane) call on the test's thread (a `#[tokio::test]` runs
//! its tasks on that one thread) reaches that control plane. In tests/serial/ a call without it
//! panics, so no test can reach a cluster another test is using.

use std::cell::Cell;
use std::sync::Mutex;

use tokio::sync::{Semaphore, SemaphorePermit};

/// How many control planes tests/serial/ spreads its tests over. Most of a serial test's time is
/// waiting (a process to start, the API server to come back, a grace period to end), so three run
/// side by side in about the time of one on a 2-core machine. libtest runs as many tests at a
/// time as the machine has cores unless told (`make test` sets `RUST_TEST_THREADS=3`); tests
/// beyond the lanes wait for one.
pub const LANES: usize = 3;

static PERMITS: Semaphore = Semaphore::const_new(LANES);
static BUSY: Mutex<[bool; LANES]> = Mutex::new([false; LANES]);

thread_local! {
    static CURRENT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// A control plane held for one test; released (for the next test) when dropped, also when the
/// test panics. Take it as the test's first line so it is dropped last, after everything the test
/// started on that control plane has stopped.
pub struct ExclusiveCluster {
    lane: usize,
    _permit: SemaphorePermit<'static>,
}

/// Waits for a free control plane and makes it this thread's [`control_plane()`]
/// (started on first use).
///
/// [`control_plane()`]: super::control_plane
pub async fn exclusive_cluster() -> ExclusiveCluster {
    // An existing cluster (`DEVPORTAL_TEST_KUBECONFIGS`) is one cluster: one test at a time.
    let wanted = if std::env::var_os("DEVPORTAL_TEST_KUBECONFIGS").is_some() {
        LANES as u32
    } else {
        1
    };
    let permit = PERMITS
        .acquire_many(wanted)
        .await
        .expect("the semaphore is never closed");
    let lane = {
        let mut busy = BUSY.lock().unwrap_or_else(|e| e.into_inner());
        let lane = busy
            .iter()
            .position(|taken| !taken)
            .expect("a permit means a free lane");
        busy[lane] = true;
        lane
    };
    CURRENT.with(|current| current.set(Some(lane)));
    ExclusiveCluster {
        lane,
        _permit: permit,
    }
}

impl Drop for ExclusiveCluster {
    fn drop(&mut self) {
        CURRENT.with(|current| current.set(None));
        BUSY.lock().unwrap_or_else(|e| e.into_inner())[self.lane] = false;
    }
}

/// The lane of the control plane this thread's test holds, if it holds one.
pub fn current_lane() -> Option<usize> {
    CURRENT.with(Cell::get)
}
