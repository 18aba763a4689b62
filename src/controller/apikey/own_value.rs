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

use super::secrets::Outcome;
use crate::controller::context::Context;
use crate::controller::secret_cache::OwnedSecret;
use crate::keys::{self, ApiKeyValue};
use crate::resources::APIKey;
use crate::resources::cached_key::CachedKey;
use crate::secrets::{self, Enforcement};

/// Why `value`, read from the consumer's Secret `secret` (`namespace/name`), cannot be `key`'s
/// value, if it cannot. The uniqueness rule applies only when the key is to be enforced
/// (`enforcement` set). Nothing returned repeats the value.
pub(super) fn problem(
    key: &APIKey,
    value: &ApiKeyValue,
    secret: &str,
    enforcement: Option<&Enforcement>,
    ctx: &Context,
) -> Option<Outcome> {
    if let Some(why) = keys::own_value_problem(value.expose(), ctx.config.own_key_min_length) {
        return Some(Outcome::Problem(
            "KeyValueRejected",
            format!(
                "the key value in Secret {secret} named in spec.secretRef {why}; put another value in it"
            ),
        ));
    }
    let desired = secrets::enforcement_secret(key, enforcement?, value);
    clashes(key, &desired, ctx).then(|| {
        Outcome::Problem(
            "KeyValueInUse",
            format!(
                "the key value in Secret {secret} named in spec.secretRef is already the key of another live APIKey, and the gateway could not tell the two apart; put another value in it"
            ),
        )
    })
}

/// Whether another live key keeps the value `desired` (the enforcement Secret `key` would get)
/// holds. Nudges the other key when `key` keeps it instead.
fn clashes(key: &APIKey, desired: &Secret, ctx: &Context) -> bool {
    let uid = key.metadata.uid.as_deref().unwrap_or_default();
    let holders = ctx.secrets.enforced_with(secrets::content_digest(desired));
    let already_mine = holders.iter().any(|h| h.cached.marked_for(uid));
    let mut lose = false;
    for other in holders.iter().filter(|h| !h.cached.marked_for(uid)) {
        // An enforcement Secret of no live key is garbage collected: it keeps nothing.
        let Some(other_key) = live_key_of(other, ctx) else {
            continue;
        };
        if other_key.spec().secret_ref.is_none() || !already_mine || older(&other_key, key) {
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
