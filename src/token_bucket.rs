//! A token bucket: at most a burst, then a steady rate. It bounds the controller's Events in a
//! burst of transitions. (The webhook's live API calls have budgets per caller and per lane:
//! [`crate::webhook::lookup::rate`].)

use std::sync::Mutex;
use std::time::Instant;

/// Tokens refilled at `rate` per second, up to `burst`.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens (at least one) refilling at `per_second` (at least a
    /// token an hour, so the bucket never stays empty for good).
    pub fn new(per_second: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: per_second.max(1.0 / 3600.0),
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes a token at `now` if one is left.
    pub fn try_take_at(&self, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = &mut *state;
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * self.rate).min(self.burst);
        *last = now.max(*last);
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Takes a token now if one is left.
    pub fn try_take(&self) -> bool {
        self.try_take_at(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let bucket = TokenBucket::new(10.0, 5);
        let t0 = Instant::now();
        let taken = (0..20).filter(|_| bucket.try_take_at(t0)).count();
        assert_eq!(taken, 5, "the burst, then nothing");
        assert!(!bucket.try_take_at(t0 + Duration::from_millis(50)));
        assert!(
            bucket.try_take_at(t0 + Duration::from_millis(100)),
            "one per 100 ms"
        );
        assert!(!bucket.try_take_at(t0 + Duration::from_millis(150)));
        // A long pause refills to the burst, not beyond.
        let later = t0 + Duration::from_secs(60);
        let taken = (0..20).filter(|_| bucket.try_take_at(later)).count();
        assert_eq!(taken, 5);
    }
}
