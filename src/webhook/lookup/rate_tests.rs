//! The live-call budgets: per caller, per lane, the ceiling, the bounded map, and the
//! admission's charge.

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
