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
mod tests {
    use std::time::Duration;

    use super::*;

    fn budget(ceiling: (f64, u32), per_caller: (f64, u32), max_callers: usize) -> LiveBudget {
        LiveBudget::new(BudgetLimits {
            ceiling: Rate::new(ceiling.0, ceiling.1),
            per_caller: Rate::new(per_caller.0, per_caller.1),
            max_callers,
        })
    }

    fn charge(caller: &str, lane: Lane) -> Charge {
        Charge {
            caller: Some(caller.into()),
            lane,
        }
    }

    fn taken(budget: &LiveBudget, charge: &Charge, now: Instant, tries: usize) -> usize {
        (0..tries)
            .filter(|_| budget.try_take_at(charge, now).is_ok())
            .count()
    }

    #[test]
    fn a_caller_spends_only_its_own_budget() {
        let budget = budget((50.0, 200), (10.0, 20), 100);
        let t0 = Instant::now();
        let flooder = charge("consumer", Lane::Request);
        assert_eq!(
            taken(&budget, &flooder, t0, 1000),
            20,
            "its burst, then nothing"
        );
        assert_eq!(
            budget.try_take_at(&flooder, t0),
            Err(Refusal::Caller),
            "refused as the caller"
        );
        let other = charge("consumer2", Lane::Request);
        assert_eq!(
            taken(&budget, &other, t0, 5),
            5,
            "another requester is served"
        );
        // The caller's own rate after a second: ten more.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(taken(&budget, &flooder, t1, 1000), 10);
    }

    #[test]
    fn requesters_use_at_most_half_of_the_ceiling_and_reviews_the_rest() {
        // Many requesters (identities) flooding at once.
        let budget = budget((50.0, 200), (10.0, 40), 10_000);
        let t0 = Instant::now();
        let requested: usize = (0..100)
            .map(|i| taken(&budget, &charge(&format!("c{i}"), Lane::Request), t0, 100))
            .sum();
        assert_eq!(requested, 100, "half of the ceiling's burst");
        let refused = budget.try_take_at(&charge("c-new", Lane::Request), t0);
        assert_eq!(refused, Err(Refusal::Shared));
        let owners: usize = (0..10)
            .map(|i| taken(&budget, &charge(&format!("owner{i}"), Lane::Review), t0, 10))
            .sum();
        assert_eq!(owners, 100, "every review finds the other half");
        // Over a second the requesters get half of the rate, and reviews still find theirs.
        let t1 = t0 + Duration::from_secs(1);
        let requested: usize = (0..100)
            .map(|i| taken(&budget, &charge(&format!("c{i}"), Lane::Request), t1, 100))
            .sum();
        assert_eq!(requested, 25);
        assert_eq!(taken(&budget, &charge("owner0", Lane::Review), t1, 10), 10);
    }

    #[test]
    fn reviews_may_use_the_whole_ceiling_but_no_more() {
        let budget = budget((10.0, 20), (100.0, 100), 100);
        let t0 = Instant::now();
        assert_eq!(taken(&budget, &charge("admin", Lane::Review), t0, 100), 20);
        assert_eq!(
            budget.try_take_at(&charge("owner", Lane::Review), t0),
            Err(Refusal::Shared),
            "the ceiling holds for reviews too"
        );
    }

    #[test]
    fn the_controller_has_no_caller_budget_but_the_ceiling_holds() {
        let budget = budget((10.0, 30), (1.0, 1), 100);
        let t0 = Instant::now();
        let controller = Charge {
            caller: None,
            lane: Lane::Review,
        };
        assert_eq!(taken(&budget, &controller, t0, 100), 30);
    }

    #[test]
    fn a_refused_call_takes_no_token_anywhere() {
        // The caller's budget barely refills; the ceiling refills its burst every 200 ms.
        let budget = budget((10.0, 2), (0.001, 5), 100);
        let t0 = Instant::now();
        let owner = charge("owner", Lane::Review);
        let mut made = 0;
        for step in 0..10 {
            let now = t0 + Duration::from_millis(200 * step);
            made += taken(&budget, &owner, now, 10);
        }
        assert_eq!(made, 5, "the ceiling's refusals cost the caller nothing");
        assert_eq!(
            budget.try_take_at(&owner, t0 + Duration::from_secs(3)),
            Err(Refusal::Caller)
        );
        // And the caller's refusals cost the ceiling nothing.
        assert_eq!(
            taken(
                &budget,
                &charge("admin", Lane::Review),
                t0 + Duration::from_secs(3),
                10
            ),
            2
        );
    }

    #[test]
    fn callers_cannot_grow_the_map() {
        let budget = budget((1e9, u32::MAX), (1.0, 5), 64);
        let t0 = Instant::now();
        for i in 0..1000 {
            let now = t0 + Duration::from_millis(i);
            assert!(
                budget
                    .try_take_at(&charge(&format!("sa-{i}"), Lane::Request), now)
                    .is_ok()
            );
        }
        assert!(budget.callers() <= 64, "{} buckets", budget.callers());
    }

    #[test]
    fn eviction_drops_refilled_buckets_before_drained_ones() {
        let budget = budget((1e9, u32::MAX), (1.0, 3), 2);
        let t0 = Instant::now();
        let flooder = charge("flooder", Lane::Request);
        assert_eq!(taken(&budget, &flooder, t0, 10), 3);
        assert!(
            budget
                .try_take_at(&charge("idle", Lane::Request), t0)
                .is_ok()
        );
        // "idle" refills after a few seconds; "flooder" is still drained by its new calls.
        let t1 = t0 + Duration::from_secs(3);
        assert_eq!(taken(&budget, &flooder, t1, 10), 3);
        assert!(
            budget
                .try_take_at(&charge("newcomer", Lane::Request), t1)
                .is_ok()
        );
        assert_eq!(
            budget.try_take_at(&flooder, t1),
            Err(Refusal::Caller),
            "the drained bucket was kept; the refilled one went"
        );
    }

    #[tokio::test]
    async fn an_admission_charges_its_own_caller() {
        assert_eq!(current(), Charge::UNATTRIBUTED);
        let owner = charge("owner", Lane::Review);
        let seen = charged_to(owner.clone(), async {
            tokio::task::yield_now().await;
            current()
        })
        .await;
        assert_eq!(seen, owner);
        assert_eq!(current(), Charge::UNATTRIBUTED);
    }
}
