//! The strict order of a request's reviews (docs/operator-guide.md: the latest review of a request
//! wins, in a strict order with no ties, whether it came as an APIKeyApproval or as
//! `spec.approval` on the APIKey).
//!
//! Reviews are stamped by the admission webhook with the time it admitted them, to the
//! microsecond ([`stamp`]), and never earlier than one microsecond after the reviews of the same
//! request it can see (the stored object's, and the request's mirror of the key's), so an owner
//! who approves and then denies gets two different, ordered times even on replicas whose clocks
//! disagree a little. Times stored by earlier releases (whole seconds) read as they are.
//!
//! Two reviews are then ordered by [`Rank`]: time first, and at the same time a denial is later
//! than an approval (so a denial wins a tie). What is still equal (same time, same decision) is
//! ordered by where the review lives: the key's own review before anything equal to it, and
//! APIKeyApprovals by creation time and name. A review withdrawn from the key (its `spec.approval`
//! cleared by someone who may approve) supersedes every review up to the withdrawal: clearing a
//! revocation does not bring an older approval back.

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// The resolution of review times: what survives the stored form (RFC 3339, microseconds).
pub const RESOLUTION: Duration = Duration::from_micros(1);

/// `at` cut to [`RESOLUTION`], as it reads back once stored.
pub fn truncate(at: Timestamp) -> Timestamp {
    let micros = at.as_microsecond();
    Timestamp::from_microsecond(micros).unwrap_or(at)
}

/// The time to stamp on a review admitted at `now`: `now` to the microsecond, or one microsecond
/// after the latest of `earlier` (the times of reviews of the same request already stored), if
/// that is later. Strictly after every one of `earlier`.
pub fn stamp(now: Timestamp, earlier: impl IntoIterator<Item = Timestamp>) -> Timestamp {
    let step = SignedDuration::from_micros(1);
    earlier
        .into_iter()
        .map(|t| truncate(t).checked_add(step).unwrap_or(t))
        .fold(truncate(now), Timestamp::max)
}

/// A review's place in the order: when, then whether it denies (a denial is the later of two
/// reviews of the same time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rank {
    /// When the review was stamped.
    pub at: Timestamp,
    /// Whether it denies (`approved: false`).
    pub denies: bool,
}

impl Rank {
    /// The rank of a review of `approved` stamped `at`.
    pub fn new(at: Timestamp, approved: bool) -> Self {
        Self {
            at,
            denies: !approved,
        }
    }
}

/// How an APIKeyApproval stands against the review its key carries (`carried`, if any) and the
/// key's withdrawal mark (`withdrawn`, if its review was ever cleared).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Against {
    /// The approval is later than both: it should be the key's review.
    Later,
    /// The key's review is the later (or equal) one.
    OlderThanKeysReview,
    /// A withdrawal of the key's review at or after the approval superseded it.
    Withdrawn,
}

/// Where `approval` stands against the key's review `carried` and withdrawal mark `withdrawn`.
/// An approval equal in rank to the key's review is not later (the key's review comes first in
/// the order: applying the other would change nothing).
pub fn against(approval: Rank, carried: Option<Rank>, withdrawn: Option<Timestamp>) -> Against {
    if withdrawn.is_some_and(|w| approval.at <= w) {
        Against::Withdrawn
    } else if carried.is_some_and(|c| c >= approval) {
        Against::OlderThanKeysReview
    } else {
        Against::Later
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn stamps_are_microseconds_and_strictly_after_what_came_before() {
        let now = t("2026-01-01T00:00:00.123456789Z");
        assert_eq!(stamp(now, []), t("2026-01-01T00:00:00.123456Z"));
        // A review stamped later by a replica whose clock runs ahead still comes before.
        let ahead = t("2026-01-01T00:00:00.500000Z");
        assert_eq!(stamp(now, [ahead]), t("2026-01-01T00:00:00.500001Z"));
        // Earlier reviews do not move the stamp.
        assert_eq!(
            stamp(now, [t("2025-12-31T23:59:59Z")]),
            t("2026-01-01T00:00:00.123456Z")
        );
        // The same microsecond twice: the second is one microsecond on.
        let first = stamp(now, []);
        let second = stamp(now, [first]);
        assert!(second > first);
        assert_eq!(
            serde_json::to_value(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                second
            ))
            .unwrap(),
            "2026-01-01T00:00:00.123457Z"
        );
    }

    #[test]
    fn a_denial_wins_a_tie_and_time_decides_otherwise() {
        let at = t("2026-01-01T00:00:00Z");
        assert!(Rank::new(at, false) > Rank::new(at, true));
        let later = t("2026-01-01T00:00:00.000001Z");
        assert!(Rank::new(later, true) > Rank::new(at, false));
    }

    #[test]
    fn second_precision_times_of_earlier_releases_order_before_finer_ones_within_that_second() {
        let old = t("2026-01-01T00:00:00Z");
        let fine = t("2026-01-01T00:00:00.000001Z");
        assert!(Rank::new(fine, true) > Rank::new(old, true));
    }

    #[test]
    fn an_approval_counts_only_when_later_than_the_keys_review_and_any_withdrawal() {
        let t1 = t("2026-01-01T00:00:00.100000Z");
        let t2 = t("2026-01-01T00:00:00.200000Z");
        let t3 = t("2026-01-01T00:00:00.300000Z");
        // Approve at t1 (on the key), deny at t2 (an APIKeyApproval) within the same second.
        assert_eq!(
            against(Rank::new(t2, false), Some(Rank::new(t1, true)), None),
            Against::Later
        );
        // The same approval, already carried: nothing to do.
        assert_eq!(
            against(Rank::new(t2, false), Some(Rank::new(t2, false)), None),
            Against::OlderThanKeysReview
        );
        // At the same instant, a carried approval loses to a denial, a carried denial does not.
        assert_eq!(
            against(Rank::new(t2, false), Some(Rank::new(t2, true)), None),
            Against::Later
        );
        assert_eq!(
            against(Rank::new(t2, true), Some(Rank::new(t2, false)), None),
            Against::OlderThanKeysReview
        );
        // Revoked on the key at t2, the review cleared at t3: the approval of t1 stays superseded.
        assert_eq!(
            against(Rank::new(t1, true), None, Some(t3)),
            Against::Withdrawn
        );
        // A review made after the withdrawal counts.
        let t4 = t("2026-01-01T00:00:00.400000Z");
        assert_eq!(against(Rank::new(t4, true), None, Some(t3)), Against::Later);
    }
}
