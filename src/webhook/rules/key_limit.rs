//! The key limit at admission: fewer than the effective limit (`--max-keys-per-user-per-product`,
//! tightened by APIKeyPolicies) other keys of the requester for the product count (see
//! [`crate::key_limit`]), checked and promised in one step.

use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::jiff::Timestamp;

use super::{Checked, Limits, Reason, Verdict};
use crate::key_limit::Holder;
use crate::policy::Limit;
use crate::resources::APIKey;
use crate::webhook::key_counts::Claim;
use crate::webhook::lookup::Lookup;

/// The key limit: fewer than the maximum other keys that are or can become live (see
/// [`crate::key_limit`]) for this requester and product. The check and the promise of a place to
/// this key are one atomic step, so concurrent CREATEs cannot pass on the same count. Run last:
/// a key refused by a later check must not hold a place.
pub(super) fn check<C: Lookup>(
    lookup: &C,
    limits: &Limits,
    limit: &Limit<usize>,
    key: &APIKey,
    holder: Holder,
    at: (Timestamp, bool),
) -> Checked {
    let (now, dry_run) = at;
    // The API server names a `generateName` key before validating admission; should a key
    // still arrive unnamed, it gets a promise of its own rather than sharing one.
    let name = key
        .metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| {
            static UNNAMED: AtomicU64 = AtomicU64::new(0);
            format!("<unnamed {}>", UNNAMED.fetch_add(1, Ordering::Relaxed))
        });
    let claim = Claim {
        key: (key.metadata.namespace.clone().unwrap_or_default(), name),
        limit: limit.value,
        cutoff: limits.key_limit().cutoff(now),
        reserve: !dry_run,
        holder,
    };
    lookup.admit_key(&claim, now).map_err(|count| {
        Verdict::deny(
            Reason::TooManyKeys,
            format!(
                "{count} keys already exist for {}; the limit is {} ({}; Pending, Approved and \
                 Failed keys count, and expired ones for {} after expiry): delete one you no \
                 longer need first",
                claim.holder,
                claim.limit,
                match &limit.policy {
                    Some(policy) => format!(
                        "APIKeyPolicy {policy:?}, rule {}",
                        crate::policy::RuleName::MaxKeys
                    ),
                    None => "--max-keys-per-user-per-product".into(),
                },
                crate::flags::format_duration(limits.expired_key_grace),
            ),
        )
    })
}

/// Who `key` counts against once stored: `user` on the product `namespace/product`.
pub(super) fn holder(user: &str, namespace: &str, product: &str) -> Holder {
    Holder {
        user: user.into(),
        product_namespace: namespace.into(),
        product: product.into(),
    }
}
