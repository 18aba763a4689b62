//! How many Normal Events the controller writes: [`EventBudget`].

use std::sync::atomic::{AtomicBool, Ordering};

use crate::token_bucket::TokenBucket;

/// How many Normal Events the controller writes: a burst, then a steady rate. Each Event is an
/// API write; when thousands of keys change phase at once, one Event per key would cost the API
/// server as much as the Secrets themselves. Over the budget a Normal Event is counted
/// (`devportal_controller_events_suppressed_total{reason}`) instead of written; each object's
/// status conditions still record the transition. Warning Events are always written.
pub struct EventBudget {
    bucket: TokenBucket,
    /// Whether the last Normal Event was suppressed (to log once per stretch, not per Event).
    spent: AtomicBool,
}

impl EventBudget {
    /// A budget of `burst` Events at once, refilled at `per_second`.
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self {
            bucket: TokenBucket::new(per_second, burst),
            spent: AtomicBool::new(false),
        }
    }

    /// Whether an Event may be written now: always for a warning, within the budget otherwise.
    pub(super) fn allows(&self, warning: bool) -> bool {
        if warning {
            return true;
        }
        let allowed = self.bucket.try_take();
        let was_spent = self.spent.swap(!allowed, Ordering::Relaxed);
        if !allowed && !was_spent {
            tracing::info!(
                "Event budget spent (--event-burst, --events-per-second): further Normal Events \
                 are counted in devportal_controller_events_suppressed_total, not written, until \
                 it refills; status conditions record every transition"
            );
        }
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_pass_a_spent_budget() {
        let budget = EventBudget::new(0.001, 2);
        assert!(budget.allows(false));
        assert!(budget.allows(false));
        assert!(!budget.allows(false), "the burst is spent");
        assert!(budget.allows(true), "a warning is always written");
        assert!(!budget.allows(false));
    }
}
