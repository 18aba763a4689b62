//! [`KeyCounts`]: the keys that count toward the limit per requester and product, kept in step
//! with the APIKey watch, plus the places this process has promised to CREATEs it admitted and
//! the watch has not shown yet.
//!
//! The guardrail asks "may this user hold one more key for this product?" on every APIKey CREATE.
//! Scanning every cached key would make that cost grow with the cluster, so the counts keep the
//! keys of each [`Holder`] and update them from the watcher's events. Which keys count is
//! [`crate::key_limit`]'s rule; the time an expired key stops counting is decided at each
//! question, so no event is needed when its grace ends.
//!
//! The answer and the promise are one step under one lock ([`KeyCounts::admit`]): two concurrent
//! CREATEs for the same holder can never both pass on the same count. A promise (a
//! *reservation*) ends when the watch shows the key, or after [`RESERVATION_TTL`] if the CREATE
//! never happened (a later admission webhook or a name conflict can still refuse it).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Resource;
use kube::runtime::watcher;

use crate::key_limit::{Holder, counts_unless_expired};
use crate::resources::cached_key::CachedKey;

/// How long a place stays promised to an admitted CREATE the watch has not shown yet.
pub const RESERVATION_TTL: Duration = Duration::from_secs(30);

/// Namespace and name of an APIKey.
pub type KeyName = (String, String);

/// A key that counts: who it counts against, and until when if it expires.
#[derive(Clone, Debug)]
struct Counted {
    holder: Holder,
    expires: Option<Timestamp>,
}

#[derive(Default)]
struct Inner {
    keys: HashMap<KeyName, Counted>,
    by_holder: HashMap<Holder, HashSet<KeyName>>,
    /// Admitted CREATEs not seen yet, with the time their promise ends.
    reservations: HashMap<Holder, HashMap<KeyName, Timestamp>>,
    /// Keys seen during a watcher (re)list, swapped in at `InitDone`.
    relist: Option<HashMap<KeyName, Counted>>,
}

impl Inner {
    fn remove(&mut self, name: &KeyName) {
        if let Some(counted) = self.keys.remove(name)
            && let Some(names) = self.by_holder.get_mut(&counted.holder)
        {
            names.remove(name);
            if names.is_empty() {
                self.by_holder.remove(&counted.holder);
            }
        }
    }

    fn insert(&mut self, name: KeyName, counted: Counted) {
        self.end_reservation(&counted.holder, &name);
        self.by_holder
            .entry(counted.holder.clone())
            .or_default()
            .insert(name.clone());
        self.keys.insert(name, counted);
    }

    fn end_reservation(&mut self, holder: &Holder, name: &KeyName) {
        if let Some(reserved) = self.reservations.get_mut(holder) {
            reserved.remove(name);
            if reserved.is_empty() {
                self.reservations.remove(holder);
            }
        }
    }

    /// The keys that count for `holder` besides `except`: seen ones not expired by `cutoff`,
    /// and reservations still in force at `now`.
    fn count(
        &mut self,
        holder: &Holder,
        except: &KeyName,
        cutoff: Timestamp,
        now: Timestamp,
    ) -> usize {
        let seen = self.by_holder.get(holder);
        let counted = seen.into_iter().flatten().filter(|name| {
            *name != except
                && self
                    .keys
                    .get(*name)
                    .is_some_and(|k| k.expires.is_none_or(|t| t > cutoff))
        });
        let counted = counted.count();
        let reserved = match self.reservations.get_mut(holder) {
            Some(reserved) => {
                reserved.retain(|_, until| *until > now);
                reserved
                    .keys()
                    .filter(|name| *name != except && !seen.is_some_and(|s| s.contains(*name)))
                    .count()
            }
            None => 0,
        };
        if self.reservations.get(holder).is_some_and(HashMap::is_empty) {
            self.reservations.remove(holder);
        }
        counted + reserved
    }
}

/// What [`KeyCounts::admit`] is asked about: the key being admitted and who it counts against.
#[derive(Clone, Debug)]
pub struct Claim {
    /// Who the key counts against.
    pub holder: Holder,
    /// The key's namespace and name.
    pub key: KeyName,
    /// At most this many keys may count for the holder.
    pub limit: usize,
    /// Keys that expired at or before this instant no longer count.
    pub cutoff: Timestamp,
    /// Whether to promise the place (false for a dry run, which creates nothing).
    pub reserve: bool,
}

/// The keys that count toward the limit, by requester and product.
#[derive(Default)]
pub struct KeyCounts {
    inner: Mutex<Inner>,
}

impl KeyCounts {
    /// Applies one watcher event.
    pub fn apply(&self, event: &watcher::Event<CachedKey>) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            watcher::Event::Apply(key) | watcher::Event::Delete(key) => {
                let Some(name) = key_name(key) else { return };
                if let Some(holder) = Holder::of(key) {
                    inner.end_reservation(&holder, &name);
                }
                inner.remove(&name);
                if matches!(event, watcher::Event::Apply(_))
                    && let Some(counted) = counted(key)
                {
                    inner.insert(name, counted);
                }
            }
            watcher::Event::Init => inner.relist = Some(HashMap::new()),
            watcher::Event::InitApply(key) => {
                if let (Some(name), Some(counted)) = (key_name(key), counted(key)) {
                    inner.relist.get_or_insert_default().insert(name, counted);
                }
            }
            watcher::Event::InitDone => {
                let keys = inner.relist.take().unwrap_or_default();
                inner.keys.clear();
                inner.by_holder.clear();
                for (name, counted) in keys {
                    inner.insert(name, counted);
                }
            }
        }
    }

    /// Admits `claim.key` if fewer than `claim.limit` other keys count for its holder, promising
    /// it a place until the watch shows it (unless a dry run); otherwise returns how many count.
    pub fn admit(&self, claim: &Claim, now: Timestamp) -> Result<(), usize> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        // Counting looks at each of the holder's keys; fewer keys and promises than the limit
        // admit without it (a requester with thousands of keys under a high limit, say).
        let at_most = inner.by_holder.get(&claim.holder).map_or(0, |s| s.len())
            + inner
                .reservations
                .get(&claim.holder)
                .map_or(0, HashMap::len);
        if at_most >= claim.limit {
            let count = inner.count(&claim.holder, &claim.key, claim.cutoff, now);
            if count >= claim.limit {
                return Err(count);
            }
        }
        let seen = inner
            .keys
            .get(&claim.key)
            .is_some_and(|k| k.holder == claim.holder);
        if claim.reserve && !seen {
            let ttl = SignedDuration::try_from(RESERVATION_TTL).unwrap_or(SignedDuration::MAX);
            let until = now.checked_add(ttl).unwrap_or(Timestamp::MAX);
            inner
                .reservations
                .entry(claim.holder.clone())
                .or_default()
                .insert(claim.key.clone(), until);
        }
        Ok(())
    }
}

fn key_name(key: &CachedKey) -> Option<KeyName> {
    let meta = key.meta();
    Some((meta.namespace.clone()?, meta.name.clone()?))
}

/// The holder and expiry of a key that counts (its expiry aside).
fn counted(key: &CachedKey) -> Option<Counted> {
    if !counts_unless_expired(key) {
        return None;
    }
    Some(Counted {
        holder: Holder::of(key)?,
        expires: key.spec().expires_at.as_ref().map(|t| t.0),
    })
}

#[cfg(test)]
#[path = "key_counts_tests.rs"]
mod tests;
