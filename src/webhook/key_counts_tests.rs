use std::sync::Arc;

use super::*;
use crate::resources::{APIKey, APIKeyPhase, APIKeySpec, APIKeyStatus, RequestedBy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

fn now() -> Timestamp {
    "2026-06-01T12:00:00Z".parse().unwrap()
}

fn key(name: &str, user: &str, product: &str, phase: Option<APIKeyPhase>) -> CachedKey {
    let mut spec = APIKeySpec::new(product, "gold");
    spec.api_product_ref.namespace = Some("apps".into());
    spec.requested_by = Some(RequestedBy {
        user_id: user.into(),
        email: None,
    });
    let mut key = APIKey::new(name, spec);
    key.metadata.namespace = Some("team".into());
    key.status = phase.map(|phase| APIKeyStatus {
        phase: Some(phase),
        ..APIKeyStatus::default()
    });
    key.into()
}

fn holder(user: &str, product: &str) -> Holder {
    Holder {
        user: user.into(),
        product_namespace: "apps".into(),
        product: product.into(),
    }
}

/// A claim for a new key `name` of `user` on apps/`product`, limit 5, one hour of grace.
fn claim(name: &str, user: &str, product: &str) -> Claim {
    Claim {
        holder: holder(user, product),
        key: ("team".into(), name.into()),
        limit: 5,
        cutoff: now() - SignedDuration::from_hours(1),
        reserve: true,
    }
}

/// How many keys count for `user` on `product`, as seen by a claim for a key not yet named.
fn count(counts: &KeyCounts, user: &str, product: &str) -> usize {
    let mut probe = claim("", user, product);
    probe.limit = 0;
    probe.reserve = false;
    counts.admit(&probe, now()).unwrap_err()
}

#[test]
fn counts_every_key_that_is_or_can_become_live() {
    let counts = KeyCounts::default();
    counts.apply(&watcher::Event::Init);
    for k in [
        key("a", "alice", "toys", None),
        key("b", "alice", "toys", Some(APIKeyPhase::Approved)),
        key("c", "alice", "toys", Some(APIKeyPhase::Denied)),
        key("f", "alice", "toys", Some(APIKeyPhase::Failed)),
        key("d", "alice", "books", Some(APIKeyPhase::Pending)),
        key("e", "bob", "toys", Some(APIKeyPhase::Pending)),
    ] {
        counts.apply(&watcher::Event::InitApply(k));
    }
    assert_eq!(count(&counts, "alice", "toys"), 0, "not before InitDone");
    counts.apply(&watcher::Event::InitDone);
    assert_eq!(
        count(&counts, "alice", "toys"),
        3,
        "None, Approved and Failed"
    );
    assert_eq!(count(&counts, "alice", "books"), 1);
    assert_eq!(count(&counts, "bob", "toys"), 1);

    // A rejection, a deletion in progress and a delete all stop a key counting.
    counts.apply(&watcher::Event::Apply(key(
        "a",
        "alice",
        "toys",
        Some(APIKeyPhase::Denied),
    )));
    assert_eq!(count(&counts, "alice", "toys"), 2);
    let mut deleting = key("b", "alice", "toys", Some(APIKeyPhase::Approved));
    deleting.meta_mut().deletion_timestamp = Some(Time(now()));
    counts.apply(&watcher::Event::Apply(deleting));
    assert_eq!(count(&counts, "alice", "toys"), 1);
    counts.apply(&watcher::Event::Delete(key("e", "bob", "toys", None)));
    assert_eq!(count(&counts, "bob", "toys"), 0);

    // Re-applying the same key does not double count.
    counts.apply(&watcher::Event::Apply(key("g", "bob", "toys", None)));
    counts.apply(&watcher::Event::Apply(key("g", "bob", "toys", None)));
    assert_eq!(count(&counts, "bob", "toys"), 1);
}

#[test]
fn an_expired_key_counts_for_the_grace_window() {
    let counts = KeyCounts::default();
    let expired = |name: &str, at: Timestamp| {
        let mut k = key(name, "alice", "toys", Some(APIKeyPhase::Expired)).to_key();
        k.spec.expires_at = Some(Time(at));
        CachedKey::from(k)
    };
    counts.apply(&watcher::Event::Apply(expired(
        "recent",
        now() - SignedDuration::from_mins(10),
    )));
    counts.apply(&watcher::Event::Apply(expired(
        "old",
        now() - SignedDuration::from_hours(2),
    )));
    assert_eq!(count(&counts, "alice", "toys"), 1, "only the recent one");
}

#[test]
fn a_relist_replaces_the_previous_state() {
    let counts = KeyCounts::default();
    counts.apply(&watcher::Event::Apply(key("a", "alice", "toys", None)));
    counts.apply(&watcher::Event::Init);
    counts.apply(&watcher::Event::InitApply(key("z", "zoe", "toys", None)));
    counts.apply(&watcher::Event::InitDone);
    assert_eq!(count(&counts, "alice", "toys"), 0);
    assert_eq!(count(&counts, "zoe", "toys"), 1);
}

#[test]
fn reservations_hold_places_until_the_watch_shows_the_key_or_they_lapse() {
    let counts = KeyCounts::default();
    for i in 0..5 {
        counts
            .admit(&claim(&format!("k{i}"), "alice", "toys"), now())
            .expect("within the limit");
    }
    assert_eq!(counts.admit(&claim("k5", "alice", "toys"), now()), Err(5));
    // A retry of an admitted name is not counted against itself; a dry run reserves nothing.
    assert_eq!(counts.admit(&claim("k4", "alice", "toys"), now()), Ok(()));
    let mut dry = claim("d", "bob", "toys");
    dry.reserve = false;
    counts.admit(&dry, now()).unwrap();
    assert_eq!(count(&counts, "bob", "toys"), 0);

    // The watch shows k0..k3: they count once, as keys; k4's promise is still in force.
    for i in 0..4 {
        counts.apply(&watcher::Event::Apply(key(
            &format!("k{i}"),
            "alice",
            "toys",
            None,
        )));
    }
    assert_eq!(count(&counts, "alice", "toys"), 5);
    // k4 never happened: its promise lapses.
    let later = now() + SignedDuration::try_from(RESERVATION_TTL).unwrap();
    assert_eq!(counts.admit(&claim("k5", "alice", "toys"), later), Ok(()));
}

#[test]
fn concurrent_admissions_for_one_holder_never_pass_on_the_same_count() {
    let counts = Arc::new(KeyCounts::default());
    let threads: Vec<_> = (0..20)
        .map(|i| {
            let counts = counts.clone();
            std::thread::spawn(move || {
                counts.admit(&claim(&format!("k{i}"), "alice", "toys"), now())
            })
        })
        .collect();
    let admitted = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(Result::is_ok)
        .count();
    assert_eq!(admitted, 5);
}
