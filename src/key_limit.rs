//! The per-requester, per-product key limit, as both roles apply it: who a key counts against
//! ([`Holder`]), whether it counts ([`counts`]), the order in which keys claim their places
//! ([`Place`]), and the flags ([`KeyLimitArgs`]).
//!
//! A key counts while it is or can still become live: everything but a key that is rejected
//! (phase Denied, or a review that says no) or being deleted. Pending, Approved and Failed keys
//! count (a Failed key turns Approved as soon as its problem is fixed), and so does an expired key
//! until `--expired-key-grace` after its `expiresAt`, so letting keys expire is not a way to pile
//! up objects. The webhook refuses a CREATE past the limit; the controller approves only the
//! first `--max-keys-per-user-per-product` counting keys of a holder in [`Place`] order.

use std::fmt;
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Resource;

use crate::resources::APIKeyPhase;
use crate::resources::cached_key::CachedKey;

/// The limit's flags, one value for both roles (`devportal run` reads each once).
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct KeyLimitArgs {
    /// At most this many keys per requester per product that are or can become live (Pending,
    /// Approved, Failed, or expired less than --expired-key-grace ago). The webhook refuses
    /// CREATEs past it; the controller approves only the first this many by creation order.
    #[arg(
        long,
        env = "DEVPORTAL_MAX_KEYS_PER_USER_PER_PRODUCT",
        default_value_t = 5
    )]
    pub max_keys_per_user_per_product: usize,

    /// How long an expired APIKey keeps counting toward --max-keys-per-user-per-product after
    /// its `expiresAt` (`24h`, `7d`), so short-lived keys cannot be used to store unbounded
    /// numbers of objects.
    #[arg(long, env = "DEVPORTAL_EXPIRED_KEY_GRACE", default_value = "24h", value_parser = crate::flags::parse_duration)]
    pub expired_key_grace: Duration,

    /// Longest life of an APIKey (`365d`, `720h`; `0s` for no maximum). The webhook refuses an
    /// `expiresAt` further away and sets `expiresAt` to now plus this on a key created without
    /// one; the controller expires a key without `expiresAt` this long after its creation (keys
    /// created before the webhook set it).
    #[arg(long, env = "DEVPORTAL_MAX_KEY_LIFETIME", default_value = "365d", value_parser = crate::flags::parse_duration)]
    pub max_key_lifetime: Duration,
}

impl KeyLimitArgs {
    /// Keys that expired at or before this instant no longer count at `now`.
    pub fn cutoff(&self, now: Timestamp) -> Timestamp {
        let grace = SignedDuration::try_from(self.expired_key_grace).unwrap_or(SignedDuration::MAX);
        now.checked_sub(grace).unwrap_or(Timestamp::MIN)
    }

    /// The maximum key lifetime, if there is one (`--max-key-lifetime 0s`: none).
    pub fn max_lifetime(&self) -> Option<Duration> {
        (!self.max_key_lifetime.is_zero()).then_some(self.max_key_lifetime)
    }
}

/// Who a key counts against: its requester and the product it asks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Holder {
    /// `spec.requestedBy.userId`.
    pub user: String,
    /// The product's namespace.
    pub product_namespace: String,
    /// The product's name.
    pub product: String,
}

impl Holder {
    /// The holder a key counts against; `None` without a requester or a namespace.
    pub fn of(key: &CachedKey) -> Option<Holder> {
        Some(Holder {
            user: key.spec().requested_by.as_ref()?.user_id.clone(),
            product_namespace: key.product_namespace()?.into(),
            product: key.spec().api_product_ref.name.clone(),
        })
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} on APIProduct {}/{}",
            self.user, self.product_namespace, self.product
        )
    }
}

/// Whether a key counts at all, its expiry aside: not being deleted and not rejected.
pub fn counts_unless_expired(key: &CachedKey) -> bool {
    key.meta().deletion_timestamp.is_none()
        && key.phase() != Some(APIKeyPhase::Denied)
        && key.spec().approval.as_ref().is_none_or(|a| a.approved)
}

/// Whether a key counts when keys that expired at or before `cutoff` no longer do.
pub fn counts(key: &CachedKey, cutoff: Timestamp) -> bool {
    counts_unless_expired(key) && key.spec().expires_at.as_ref().is_none_or(|t| t.0 > cutoff)
}

/// A key's place in line: creation time, then name, then uid.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Place<'a> {
    created: Option<Timestamp>,
    name: &'a str,
    uid: &'a str,
}

impl<'a> Place<'a> {
    /// The place of `key`.
    pub fn of(key: &'a CachedKey) -> Self {
        let meta = key.meta();
        Place {
            created: meta.creation_timestamp.as_ref().map(|t| t.0),
            name: meta.name.as_deref().unwrap_or_default(),
            uid: meta.uid.as_deref().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{APIKey, APIKeySpec, APIKeyStatus, Approval, RequestedBy};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn key(name: &str, created: &str) -> APIKey {
        let mut spec = APIKeySpec::new("toys", "gold");
        spec.requested_by = Some(RequestedBy {
            user_id: "alice".into(),
            email: None,
        });
        let mut key = APIKey::new(name, spec);
        key.metadata.namespace = Some("team".into());
        key.metadata.creation_timestamp = Some(Time(created.parse().unwrap()));
        key
    }

    fn limit() -> KeyLimitArgs {
        KeyLimitArgs {
            max_keys_per_user_per_product: 5,
            expired_key_grace: Duration::from_secs(3_600),
            max_key_lifetime: Duration::from_secs(365 * 86_400),
        }
    }

    #[test]
    fn everything_but_rejected_deleted_and_long_expired_keys_counts() {
        let now: Timestamp = "2026-06-01T12:00:00Z".parse().unwrap();
        let cutoff = limit().cutoff(now);
        let at = |phase: APIKeyPhase| {
            let mut k = key("k", "2026-06-01T00:00:00Z");
            k.status = Some(APIKeyStatus {
                phase: Some(phase),
                ..APIKeyStatus::default()
            });
            CachedKey::from(k)
        };
        for phase in [
            APIKeyPhase::Pending,
            APIKeyPhase::Approved,
            APIKeyPhase::Failed,
        ] {
            assert!(counts(&at(phase), cutoff), "{phase:?} counts");
        }
        assert!(!counts(&at(APIKeyPhase::Denied), cutoff));
        assert!(counts(&key("new", "2026-06-01T00:00:00Z").into(), cutoff));

        let mut rejected = key("r", "2026-06-01T00:00:00Z");
        rejected.spec.approval = Some(Approval {
            approved: false,
            reason: None,
            reviewed_by: None,
            reviewed_at: None,
            product_uid: None,
            plan_tier: None,
        });
        assert!(!counts(&rejected.into(), cutoff), "a rejection in review");
        let mut deleting = key("d", "2026-06-01T00:00:00Z");
        deleting.metadata.deletion_timestamp = Some(Time(now));
        assert!(!counts(&deleting.into(), cutoff));

        let expired = |at: &str| {
            let mut k = key("e", "2026-06-01T00:00:00Z");
            k.spec.expires_at = Some(Time(at.parse().unwrap()));
            CachedKey::from(k)
        };
        assert!(
            counts(&expired("2026-06-01T11:30:00Z"), cutoff),
            "within the grace"
        );
        assert!(!counts(&expired("2026-06-01T10:59:00Z"), cutoff), "past it");
    }

    #[test]
    fn places_follow_creation_then_name() {
        let early: CachedKey = key("z", "2026-06-01T00:00:00Z").into();
        let late_a: CachedKey = key("a", "2026-06-01T00:00:01Z").into();
        let late_b: CachedKey = key("b", "2026-06-01T00:00:01Z").into();
        assert!(Place::of(&early) < Place::of(&late_a));
        assert!(Place::of(&late_a) < Place::of(&late_b));
        let holder = Holder::of(&early).unwrap();
        assert_eq!(holder.to_string(), "\"alice\" on APIProduct team/toys");
    }
}
