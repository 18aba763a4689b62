//! The controller's backstop for the key limit: webhook replicas cannot see each other's
//! promises, so more keys than the limit can reach the API server. For each requester and
//! product the keys that count (see [`crate::key_limit`]) stand in line by creation
//! ([`Place`]); only the first `--max-keys-per-user-per-product` may become Approved. The rest
//! stay Pending with reason `KeyLimitExceeded` and move up when a key ahead is deleted, denied
//! or past its grace.
//!
//! `creationTimestamp` has one-second resolution, and a key created in the same second may reach
//! the watch after this one yet stand ahead of it. So a key is approved only once [`SETTLE`] has
//! passed since its `creationTimestamp`: by then every key that can stand ahead of it is known,
//! and no key is ever approved and then taken back for one that was not seen yet.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::controller::index::RefIndex;
use crate::key_limit::{Holder, KeyLimitArgs, Place, counts};
use crate::resources::cached_key::CachedKey;

/// How long after its `creationTimestamp` (whole seconds) a key waits before it is approved.
pub const SETTLE: Duration = Duration::from_secs(2);

/// How often a key held back by the limit looks again without a change in its line, so a key
/// ahead whose grace ends lets it through.
pub const BLOCKED_RECHECK: Duration = Duration::from_secs(60);

/// Where a key stands in its holder's line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// Within the limit, and settled: it may be approved.
    Clear,
    /// Within the limit so far, but keys created in the same second may still appear; look
    /// again after this long.
    Wait(Duration),
    /// Past the limit: this message says why.
    Blocked(String),
}

/// The keys of each holder, so a key's line is read without scanning every key. A holder is
/// shared by all its keys (one allocation per holder, not per key).
pub type Holders = RefIndex<Arc<Holder>, CachedKey>;

/// Where `key` stands at `now` among the keys `holders` and `keys` know.
pub fn line(
    key: &CachedKey,
    keys: &Store<CachedKey>,
    holders: &Holders,
    limit: &KeyLimitArgs,
    now: Timestamp,
) -> Line {
    let Some(holder) = Holder::of(key) else {
        return Line::Clear;
    };
    // With no more keys than the limit (this one among them) none can be past it: no need to
    // look at each (a requester with thousands of keys would make every reconcile read them all).
    let ahead = if holders.count(&holder) <= limit.max_keys_per_user_per_product {
        0
    } else {
        let cutoff = limit.cutoff(now);
        let me = Place::of(key);
        holders
            .lookup(&holder)
            .iter()
            .filter_map(|peer| keys.get(peer))
            .filter(|peer| {
                Holder::of(peer).as_ref() == Some(&holder)
                    && counts(peer, cutoff)
                    && Place::of(peer) < me
            })
            .count()
    };
    if ahead >= limit.max_keys_per_user_per_product {
        return Line::Blocked(format!(
            "{ahead} keys already exist for {holder}; the limit is {}: this key waits until an \
             earlier one is deleted, denied or expired more than {} ago",
            limit.max_keys_per_user_per_product,
            crate::flags::format_duration(limit.expired_key_grace)
        ));
    }
    let created = key
        .meta()
        .creation_timestamp
        .as_ref()
        .map_or(Timestamp::UNIX_EPOCH, |t| t.0);
    let settled = created
        .checked_add(SignedDuration::try_from(SETTLE).unwrap_or(SignedDuration::MAX))
        .unwrap_or(Timestamp::MAX);
    match Duration::try_from(now.duration_until(settled)) {
        Ok(wait) if !wait.is_zero() => Line::Wait(wait),
        _ => Line::Clear,
    }
}

/// The other keys of the holder of a key that just stopped counting (deleted, denied), when
/// the holder has enough keys that some may be held back: they look at their line again.
pub fn wake_after(
    key: &CachedKey,
    holders: &Holders,
    limit: &KeyLimitArgs,
) -> Vec<ObjectRef<CachedKey>> {
    let Some(holder) = Holder::of(key) else {
        return Vec::new();
    };
    // Fewer keys than the limit (this one perhaps among them): nobody was held back.
    if holders.count(&holder) < limit.max_keys_per_user_per_product {
        return Vec::new();
    }
    let this = ObjectRef::from_obj(key);
    let others: Vec<_> = holders
        .lookup(&holder)
        .into_iter()
        .filter(|peer| *peer != this)
        .collect();
    if others.len() < limit.max_keys_per_user_per_product {
        return Vec::new();
    }
    others
}

#[cfg(test)]
#[path = "key_line_tests.rs"]
mod tests;
