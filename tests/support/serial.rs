//! The one-at-a-time lock of the tests that must have the control plane to themselves
//! (tests/serial/): they stop components, start their own controllers or register their own
//! webhooks, which would otherwise act on each other's objects.

use tokio::sync::Mutex;

/// Taken for the whole of each test of tests/serial/ (`let _serial = ONE_AT_A_TIME.lock().await;`
/// first thing); a test that panics releases it too.
pub static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());
