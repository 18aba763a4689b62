//! How long a watch waits before it retries after an error.

use std::time::Duration;

use kube::runtime::utils::Backoff;

/// First wait after an error.
const FIRST: Duration = Duration::from_millis(250);
/// Longest wait. kube's default (client-go's) grows to 30 s, so a watch that failed through a
/// 10-second API server restart could sit idle for another half minute after the server was
/// back; every key created meanwhile waited with it. A few seconds keeps recovery quick while
/// still sparing a struggling server a storm of retries.
const LONGEST: Duration = Duration::from_secs(4);

/// Exponential backoff from 250 ms to 4 s with ±25 % jitter, reset by any successful event.
#[derive(Debug, Default)]
pub struct WatchBackoff {
    attempts: u32,
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let base = FIRST.saturating_mul(1 << self.attempts.min(8)).min(LONGEST);
        self.attempts = self.attempts.saturating_add(1);
        Some(jitter(base))
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.attempts = 0;
    }
}

/// `base` scaled by a random factor in [0.75, 1.25), so replicas do not retry in lockstep.
fn jitter(base: Duration) -> Duration {
    let mut byte = [0u8; 1];
    // Without randomness the wait is merely not jittered.
    let _ = getrandom::fill(&mut byte);
    base.mul_f64(0.75 + f64::from(byte[0]) / 512.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_a_few_seconds_and_starts_over_after_a_success() {
        let mut backoff = WatchBackoff::default();
        let waits: Vec<Duration> = backoff.by_ref().take(10).collect();
        assert!(waits[0] >= Duration::from_millis(187) && waits[0] < Duration::from_millis(313));
        assert!(waits.iter().all(|w| *w <= LONGEST.mul_f64(1.25)));
        assert!(waits[9] >= LONGEST.mul_f64(0.75));
        backoff.reset();
        assert!(backoff.next().unwrap() < Duration::from_millis(313));
    }
}
