//! A key value the consumer brings in `spec.secretRef`: the rules it must meet (length and
//! character set, see [`keys::own_value_problem`]) and that no other live key is enforced with it —
//! Authorino finds the identity by the value, so two keys holding one value are one user to it.
//!
//! "Live" is what the gateway accepts: keys with an enforcement Secret. The controller's Secret
//! cache keeps a keyed digest (SipHash with a per-process random key) of every enforcement
//! Secret's data, never the value, indexed by that digest; the brought value is compared through
//! the digest of the enforcement Secret it would become. Who keeps a shared value:
//! - a key devportal generated always (a brought value equal to it is a copy of someone's key);
//! - otherwise the key already enforced with it; when both are (a race, or Secrets from before this
//!   rule), the older APIKey (creation time, then uid), and the other is reconciled again to fail.

use k8s_openapi::api::core::v1::Secret;
use kube::Resource;
use kube::runtime::reflector::ObjectRef;

use crate::controller::context::Context;
use crate::controller::secret_cache::OwnedSecret;
use crate::keys::{self, ApiKeyValue};
use crate::resources::APIKey;
use crate::resources::cached_key::CachedKey;
use crate::secrets::{self, Enforcement};

/// Why `value`, read from the consumer's Secret `secret` (`namespace/name`), cannot be enforced
/// for `key` as `enforcement`, if it cannot: the Failed condition's reason and message. Checked
/// whenever an Approved key is reconciled. Nothing returned repeats the value.
pub(super) fn problem(
    key: &APIKey,
    value: &ApiKeyValue,
    secret: &str,
    enforcement: &Enforcement,
    ctx: &Context,
) -> Option<(&'static str, String)> {
    // --own-key-min-length, or an APIKeyPolicy's longer minimum.
    let min = crate::controller::policy::min_own_key_length(
        key,
        &ctx.policies,
        &ctx.products,
        &ctx.config,
    );
    if let Some(why) = keys::own_value_problem(value.expose(), min.value) {
        let by = match &min.policy {
            Some(policy) => format!(" (APIKeyPolicy {policy:?}, rule minOwnKeyLength)"),
            None => String::new(),
        };
        return Some((
            "KeyValueRejected",
            format!(
                "the key value in Secret {secret} named in spec.secretRef {why}{by}; put another value in it"
            ),
        ));
    }
    let desired = secrets::enforcement_secret(key, enforcement, value);
    clashes(key, &desired, ctx).then(|| {
        (
            "KeyValueInUse",
            format!(
                "the key value in Secret {secret} named in spec.secretRef is already the key of another live APIKey, and the gateway could not tell the two apart; put another value in it"
            ),
        )
    })
}

/// Whether another live key keeps the value that `desired` (the enforcement Secret `key` would
/// get) holds. Nudges the other key when `key` keeps it instead.
fn clashes(key: &APIKey, desired: &Secret, ctx: &Context) -> bool {
    let uid = key.metadata.uid.as_deref().unwrap_or_default();
    let holders = ctx
        .secrets
        .enforced_with(&ctx.enforcement.get(), secrets::content_digest(desired));
    let already_mine = holders.iter().any(|h| h.cached.marked_for(uid));
    let mut lose = false;
    for other in holders.iter().filter(|h| !h.cached.marked_for(uid)) {
        // An enforcement Secret of no live key is garbage collected: it keeps nothing.
        let Some(other_key) = live_key_of(other, ctx) else {
            continue;
        };
        if yields_to(key, already_mine, &other_key) {
            lose = true;
        } else {
            let _ = ctx.nudge.send(ObjectRef::from_obj(&*other_key));
        }
    }
    lose
}

/// The APIKey the Secret is the enforcement Secret of, if it is in the cache with the Secret's uid.
fn live_key_of(secret: &OwnedSecret, ctx: &Context) -> Option<std::sync::Arc<CachedKey>> {
    let (namespace, name) = secret.cached.owner()?.split_once('/')?;
    let key = ctx
        .keys
        .get(&ObjectRef::<CachedKey>::new(name).within(namespace))?;
    let uid = key.meta().uid.as_deref()?;
    secret.cached.marked_for(uid).then_some(key)
}

/// Whether `key` gives up a value that `other` is enforced with too: always to a generated key,
/// to a brought key when `key` is not enforced with it yet (`already_mine`), else to an older one.
fn yields_to(key: &APIKey, already_mine: bool, other: &CachedKey) -> bool {
    other.spec().secret_ref.is_none() || !already_mine || older(other, key)
}

/// Whether `a` was created before `b` (the uid breaks a tie).
fn older(a: &CachedKey, b: &APIKey) -> bool {
    let of = |meta: &kube::api::ObjectMeta| {
        (
            meta.creation_timestamp.as_ref().map(|t| t.0),
            meta.uid.clone().unwrap_or_default(),
        )
    };
    of(a.meta()) < of(&b.metadata)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::resources::{APIKeySpec, LocalSecretRef};

    fn key(uid: &str, created: &str, brought: bool) -> APIKey {
        let mut key = APIKey::new(uid, APIKeySpec::new("toys", "gold"));
        key.metadata.uid = Some(uid.into());
        key.metadata.creation_timestamp = Some(Time(created.parse().unwrap()));
        key.spec.secret_ref = brought.then(|| LocalSecretRef { name: "own".into() });
        key
    }

    #[test]
    fn generated_keys_keep_their_value_then_the_first_enforced_then_the_older() {
        let early = "2026-01-01T00:00:00Z";
        let late = "2026-02-01T00:00:00Z";
        let brought = key("b", late, true);
        // A copy of a generated key never wins, however old the copying key or enforced it is.
        let generated = CachedKey::from(key("g", late, false));
        assert!(yields_to(&key("x", early, true), true, &generated));
        // The key already enforced with the value keeps it against a newcomer, even an older one.
        let holder = CachedKey::from(brought.clone());
        assert!(yields_to(&key("older", early, true), false, &holder));
        // Both enforced (a race): the older APIKey keeps it, the other gives it up.
        assert!(!yields_to(&key("older", early, true), true, &holder));
        let older_holder = CachedKey::from(key("a", early, true));
        assert!(yields_to(&brought, true, &older_holder));
        // Created in the same second: the uid decides, the same way from both sides.
        let (one, two) = (key("uid-1", late, true), key("uid-2", late, true));
        assert_ne!(
            yields_to(&one, true, &CachedKey::from(two.clone())),
            yields_to(&two, true, &CachedKey::from(one))
        );
    }
}
