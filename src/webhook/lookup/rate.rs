//! [`LiveBudget`]: who may make the webhook spend a live API call, and how fast.
//!
//! Every live lookup (a cache miss, a re-read before a denial, a SubjectAccessReview) is charged
//! to the admission that needs it ([`Charge`]): to its caller (the request's
//! `userInfo.username`), to its lane ([`Lane::Review`] for approvals, APIKeyApprovals and
//! revocations, [`Lane::Request`] for everything else) and to the process-wide ceiling that
//! protects the API server. A call is made only if all three have a token:
//!
//! - each caller has a bucket of its own, so one caller flooding the webhook (dry runs included:
//!   they are admitted like writes and charged like them) spends only its own budget;
//! - requests may use at most half of the ceiling's rate and burst, so reviews always find the
//!   other half, however many requesters flood;
//! - the controller's identity has no caller bucket (it applies everyone's reviews) but is charged
//!   to its lane and the ceiling like anyone.
//!
//! The callers' buckets live in a bounded map: a bucket that has refilled is the same as a new one
//! and is dropped first; at the bound, the least recently charged caller's bucket goes. Callers
//! therefore cannot grow the webhook's memory, and rotating identities buys no more than the
//! lane's share of the ceiling.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::{Error, Result};

/// Which budget an admission draws on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// A review: an APIKeyApproval, or an approval or revocation written on an APIKey.
    Review,
    /// Everything else: key requests, products, rotations.
    Request,
}

/// Whom a live call is charged to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Charge {
    /// The caller's username; `None` for an identity without a budget of its own (the
    /// controller) or a lookup made outside any admission.
    pub caller: Option<Arc<str>>,
    /// The lane.
    pub lane: Lane,
}

impl Charge {
    /// What a lookup made outside an admission is charged: the request lane, no caller.
    pub const UNATTRIBUTED: Charge = Charge {
        caller: None,
        lane: Lane::Request,
    };
}

tokio::task_local! {
    static CHARGE: Charge;
}

/// Runs `admission` with its live calls charged to `charge` (read back by [`current`]). The
/// rules' lookups run on the admission's own task, so each one finds its admission's charge.
pub async fn charged_to<F: Future>(charge: Charge, admission: F) -> F::Output {
    CHARGE.scope(charge, admission).await
}

/// The charge of the admission running on this task, or [`Charge::UNATTRIBUTED`].
pub fn current() -> Charge {
    CHARGE
        .try_with(Clone::clone)
        .unwrap_or(Charge::UNATTRIBUTED)
}

/// A rate and a burst.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Tokens per second (at least one an hour).
    pub per_second: f64,
    /// Tokens at most (at least one).
    pub burst: f64,
}

impl Rate {
    /// `per_second` tokens a second, up to `burst`.
    pub fn new(per_second: f64, burst: u32) -> Self {
        Rate {
            per_second: per_second.max(1.0 / 3600.0),
            burst: f64::from(burst.max(1)),
        }
    }

    /// Half of this rate and burst (the burst at least one).
    fn half(self) -> Self {
        Rate {
            per_second: self.per_second / 2.0,
            burst: (self.burst / 2.0).max(1.0),
        }
    }
}

/// The tokens of one bucket as of its last charge.
#[derive(Clone, Copy, Debug)]
struct Level {
    tokens: f64,
    at: Instant,
}

impl Level {
    fn full(rate: Rate, now: Instant) -> Self {
        Level {
            tokens: rate.burst,
            at: now,
        }
    }

    /// The tokens there are at `now`.
    fn available(&self, rate: Rate, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + elapsed * rate.per_second).min(rate.burst)
    }

    /// Takes one token at `now` (the caller checked there is one).
    fn take(&mut self, rate: Rate, now: Instant) {
        self.tokens = self.available(rate, now) - 1.0;
        self.at = now.max(self.at);
    }
}

/// The limits of a [`LiveBudget`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetLimits {
    /// The ceiling of all live calls; requests get at most half of it.
    pub ceiling: Rate,
    /// Each caller's own budget.
    pub per_caller: Rate,
    /// At most this many callers' buckets are kept.
    pub max_callers: usize,
}

/// Which budget refused a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The caller's own budget is spent.
    Caller,
    /// The lane's share of the ceiling, or the ceiling, is spent.
    Shared,
}

struct State {
    ceiling: Level,
    requests: Level,
    callers: HashMap<Arc<str>, Level>,
}

/// The live-call budgets: per caller, per lane, and the ceiling.
pub struct LiveBudget {
    limits: BudgetLimits,
    state: Mutex<State>,
}

impl LiveBudget {
    /// Full budgets under `limits`.
    pub fn new(limits: BudgetLimits) -> Self {
        let now = Instant::now();
        LiveBudget {
            limits,
            state: Mutex::new(State {
                ceiling: Level::full(limits.ceiling, now),
                requests: Level::full(limits.ceiling.half(), now),
                callers: HashMap::new(),
            }),
        }
    }

    /// Takes a token for one live call charged to `charge` at `now`, from every budget it draws
    /// on, or from none of them.
    pub fn try_take_at(&self, charge: &Charge, now: Instant) -> std::result::Result<(), Refusal> {
        let limits = self.limits;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = &mut *state;
        let caller = match &charge.caller {
            Some(name) => {
                if !state.callers.contains_key(name) {
                    evict(&mut state.callers, limits, now);
                    state
                        .callers
                        .insert(name.clone(), Level::full(limits.per_caller, now));
                }
                state.callers.get_mut(name)
            }
            None => None,
        };
        if caller
            .as_ref()
            .is_some_and(|level| level.available(limits.per_caller, now) < 1.0)
        {
            return Err(Refusal::Caller);
        }
        let request = charge.lane == Lane::Request;
        let requests = limits.ceiling.half();
        if state.ceiling.available(limits.ceiling, now) < 1.0
            || (request && state.requests.available(requests, now) < 1.0)
        {
            return Err(Refusal::Shared);
        }
        if let Some(level) = caller {
            level.take(limits.per_caller, now);
        }
        state.ceiling.take(limits.ceiling, now);
        if request {
            state.requests.take(requests, now);
        }
        Ok(())
    }

    /// Takes a token now for a live call (`what`) charged to the admission running on this task.
    pub fn take(&self, what: &'static str) -> Result<()> {
        let charge = current();
        match self.try_take_at(&charge, Instant::now()) {
            Ok(()) => Ok(()),
            Err(refusal) => {
                tracing::debug!(call = what, caller = ?charge.caller, lane = ?charge.lane, ?refusal, "live lookup over the rate; not made");
                Err(match refusal {
                    Refusal::Caller => Error::CallerRateLimited(what),
                    Refusal::Shared => Error::RateLimited(what),
                })
            }
        }
    }

    /// How many callers' buckets are kept.
    #[cfg(test)]
    fn callers(&self) -> usize {
        self.state.lock().unwrap().callers.len()
    }
}

/// Makes room for one more caller at `now`: drops the buckets that have refilled (they hold
/// nothing a new bucket would not), and if none has, the least recently charged one.
fn evict(callers: &mut HashMap<Arc<str>, Level>, limits: BudgetLimits, now: Instant) {
    if callers.len() < limits.max_callers.max(1) {
        return;
    }
    callers.retain(|_, level| level.available(limits.per_caller, now) < limits.per_caller.burst);
    if callers.len() < limits.max_callers.max(1) {
        return;
    }
    if let Some(oldest) = callers
        .iter()
        .min_by_key(|(_, level)| level.at)
        .map(|(name, _)| name.clone())
    {
        callers.remove(&oldest);
    }
}

#[cfg(test)]
#[path = "rate_tests.rs"]
mod tests;
