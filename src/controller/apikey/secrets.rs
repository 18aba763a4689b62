//! The key's two Secrets: find the key value, keep the consumer copy holding it in every phase,
//! keep the enforcement Secret exactly as it should be while Approved and withdraw it otherwise,
//! and remove everything when the key goes.
//!
//! The value is never regenerated while one of the key's own Secrets holds one devportal may take
//! (see [`value`]): a key that was Failed for a moment (a policy blip, a product re-created) comes
//! back with the same value, taken from its consumer copy by devportal's MAC, its enforcement
//! Secret re-created from it. Secrets elsewhere, whatever marks they carry, are never read.

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use super::value::{self, Found};
use super::{first_write, own_value};
use crate::Result;
use crate::controller::context::Context;
use crate::controller::secret_cache::OwnedSecret;
use crate::keys::{self, ApiKeyValue};
use crate::kube_ext::object_id;
use crate::names::key_reason::{ENFORCEMENT_NAMESPACE_UNAVAILABLE, KEY_VALUE_REISSUED};
use crate::names::{API_KEY_DATA, APIKEY_UID_LABEL};
use crate::resources::{APIKey, SecretKeyRef};
use crate::secrets::{self, Enforcement, Role};

/// What became of the key's Secrets.
pub(super) enum Outcome {
    /// Settled; the consumer Secret holding the key, if the key has a value yet.
    Kept(Option<SecretKeyRef>),
    /// Something only a person can fix: the key goes Failed with this reason and message.
    Problem(&'static str, String),
}

/// Brings the key's Secrets in line: `enforcement` is where and how the enforcement Secret should
/// be while the key is Approved, `None` otherwise (then it is withdrawn, the value kept);
/// `never_enforced` when its status shows no phase or Pending (a new key); `generation` the
/// rotation generation the key's value belongs to once this reconcile is done (the rotation token
/// `status.rotation` will record), which devportal's MAC of a generated value binds.
pub(super) async fn reconcile(
    key: &APIKey,
    enforcement: Option<&Enforcement>,
    never_enforced: bool,
    generation: Option<&str>,
    ctx: &Context,
) -> Result<Outcome> {
    let namespace = key.namespace().unwrap_or_default();
    let consumer_name = secrets::consumer_secret_name(key);
    let own_secret = key.spec.secret_ref.is_some();
    let reference = SecretKeyRef {
        name: consumer_name.clone(),
        key: API_KEY_DATA.into(),
    };
    let placeholder = ApiKeyValue::from_secret(String::new());
    let desired_enforcement =
        enforcement.map(|t| secrets::enforcement_secret(key, t, &placeholder));
    let ours = ctx.secrets_of(key);
    if let Some(settled) = settled(key, &ours, desired_enforcement.as_ref(), &reference) {
        return Ok(settled);
    }
    // The enforcement namespace deleted: nothing to write until it returns (a trigger of its own).
    if desired_enforcement.is_some()
        && let Some(why) = ctx.enforcement.unavailable(&ctx.policies.namespaces)
    {
        return Ok(Outcome::Problem(ENFORCEMENT_NAMESPACE_UNAVAILABLE, why));
    }
    // A new key's Secrets: created without reading first (see [`first_write`]). Only for a key
    // that never was Approved: one that was (or Failed since) is read with care, its value kept.
    if !own_secret
        && never_enforced
        && ours.is_empty()
        && let Some(target) = enforcement
        && let Some(kept) = first_write::both(key, target, generation, ctx).await?
    {
        return Ok(Outcome::Kept(Some(kept)));
    }

    // The value: the consumer's own Secret, else the key's Secrets as [`value`] says (live reads:
    // a Secret written a moment ago may not be in the cache yet, and must be found, never
    // regenerated).
    let consumer_api = ctx.secret_api(&namespace);
    let consumer_current = consumer_api.get_opt(&consumer_name).await?;
    let enforcement_current = match &desired_enforcement {
        Some(desired) => {
            let current = ctx
                .secret_api(desired.metadata.namespace.as_deref().unwrap_or_default())
                .get_opt(desired.metadata.name.as_deref().unwrap_or_default())
                .await?;
            if let Some(foreign) = current
                .as_ref()
                .filter(|s| !secrets::belongs_to(&s.metadata, key))
            {
                return Ok(conflict(foreign, Role::Enforcement));
            }
            current
        }
        None => None,
    };
    let mut reissued = None;
    let value = if own_secret {
        let value = consumer_current.as_ref().and_then(secrets::value_of);
        let secret = format!("{namespace}/{consumer_name}");
        match &value {
            None if enforcement.is_some() => {
                let (reason, what) = match consumer_current {
                    None => ("SecretNotFound", "does not exist".to_string()),
                    Some(_) => (
                        "SecretEmpty",
                        format!("has no {API_KEY_DATA:?} entry, or an empty one"),
                    ),
                };
                return Ok(Outcome::Problem(
                    reason,
                    format!(
                        "Secret {secret} named in spec.secretRef {what}; the key is revoked until it holds a value"
                    ),
                ));
            }
            Some(value) => {
                if let Some(target) = enforcement
                    && let Some((reason, message)) =
                        own_value::problem(key, value, &secret, target, ctx)
                {
                    return Ok(Outcome::Problem(reason, message));
                }
            }
            None => {}
        }
        value
    } else {
        if let Some(foreign) = consumer_current
            .as_ref()
            .filter(|s| !secrets::belongs_to(&s.metadata, key))
        {
            return Ok(conflict(foreign, Role::Consumer));
        }
        let mac = ctx.mac_key.get().await?;
        let found = value::find(
            key,
            enforcement_current.as_ref(),
            consumer_current.as_ref(),
            &ours,
            (generation, &mac),
            ctx,
        )
        .await?;
        match found {
            Found::Value(value) => Some(value),
            Found::Nothing { refused } if enforcement.is_some() => {
                reissued = refused;
                Some(keys::generate(&ctx.config.key_prefix)?)
            }
            Found::Nothing { .. } => None,
        }
    };

    // The consumer copy first, so the value is kept before any enforcement Secret goes.
    if let (false, Some(value)) = (own_secret, &value) {
        let uid = key.metadata.uid.as_deref().unwrap_or_default();
        let mac = ctx.mac_key.get().await?.of(uid, generation, value);
        let desired = secrets::vouched_consumer_secret(key, value, mac);
        match &consumer_current {
            None => ctx.create_secret(&desired, Role::Consumer).await?,
            Some(current) if !secrets::is_exactly(current, &desired) => {
                ctx.replace_secret(current, desired, Role::Consumer).await?
            }
            Some(_) => {}
        }
    }
    if let Some(refused) = reissued {
        ctx.publish_event(
            key,
            true,
            KEY_VALUE_REISSUED,
            &format!(
                "Secret {refused} held a key value devportal did not issue for this key (written by hand, another key's, or one from before a rotation) and no enforcement Secret held the key's value: the key was issued a new value, in Secret {consumer_name}"
            ),
        )
        .await;
    }
    if let (Some(target), Some(value)) = (enforcement, &value) {
        let desired = secrets::enforcement_secret(key, target, value);
        match &enforcement_current {
            None => ctx.create_secret(&desired, Role::Enforcement).await?,
            Some(current) if !secrets::is_exactly(current, &desired) => {
                ctx.replace_secret(current, desired, Role::Enforcement)
                    .await?
            }
            Some(_) => {}
        }
    }
    // Then whatever else is the key's where devportal writes: a replaced or withdrawn enforcement
    // Secret, the old layout's Secrets.
    let keep = |s: &OwnedSecret| {
        (s.role == Role::Consumer && s.namespace == namespace && s.name == consumer_name)
            || desired_enforcement
                .as_ref()
                .is_some_and(|d| is_at(s, d) && value.is_some())
    };
    for stale in ours.iter().filter(|s| !keep(s)) {
        ctx.delete_own_secret(key, &stale.namespace, &stale.name)
            .await?;
    }
    Ok(Outcome::Kept(
        value
            .map(|_| reference)
            .filter(|_| !own_secret || enforcement.is_some()),
    ))
}

/// The outcome when the cache shows everything as it should be, so no API call is needed.
fn settled(
    key: &APIKey,
    ours: &[OwnedSecret],
    desired_enforcement: Option<&Secret>,
    reference: &SecretKeyRef,
) -> Option<Outcome> {
    let namespace = key.metadata.namespace.as_deref().unwrap_or_default();
    if key.spec.secret_ref.is_some() {
        // The consumer's own Secret is not in the cache: read it whenever it matters.
        return (desired_enforcement.is_none() && ours.is_empty()).then_some(Outcome::Kept(None));
    }
    let placeholder = ApiKeyValue::from_secret(String::new());
    let consumer_meta = secrets::consumer_secret(key, &placeholder).metadata;
    let consumer = ours
        .iter()
        .find(|s| s.role == Role::Consumer && s.namespace == namespace && s.name == reference.name);
    match (desired_enforcement, consumer) {
        (None, None) => ours.is_empty().then_some(Outcome::Kept(None)),
        (None, Some(copy)) => (ours.len() == 1 && copy.cached.matches(&consumer_meta))
            .then(|| Outcome::Kept(Some(reference.clone()))),
        (Some(desired), Some(copy)) => {
            let enforced = ours.iter().find(|s| is_at(s, desired))?;
            // A copy without the value's MAC (written by an earlier release) gets one now, from
            // the enforcement Secret's value, so the value survives a later withdrawal.
            (ours.len() == 2
                && copy.cached.vouched()
                && copy.cached.matches(&consumer_meta)
                && enforced.cached.matches(&desired.metadata)
                && enforced.cached.same_content(&copy.cached))
            .then(|| Outcome::Kept(Some(reference.clone())))
        }
        (Some(_), None) => None,
    }
}

fn is_at(secret: &OwnedSecret, desired: &Secret) -> bool {
    secret.role == Role::Enforcement
        && Some(&secret.namespace) == desired.metadata.namespace.as_ref()
        && Some(&secret.name) == desired.metadata.name.as_ref()
}

fn conflict(foreign: &Secret, role: Role) -> Outcome {
    let what = match role {
        Role::Consumer => "an owner reference to this APIKey",
        Role::Enforcement => "this APIKey's uid label",
    };
    Outcome::Problem(
        "SecretConflict",
        format!(
            "Secret {} is in the way: it is not devportal's {} Secret for this key (it lacks {what}), so devportal neither reads, overwrites nor deletes it; remove or rename it",
            object_id(&foreign.metadata),
            role.as_str()
        ),
    )
}

/// Deletes every enforcement Secret of the key, keeping the consumer copy (and so the value).
pub(super) async fn withdraw(key: &APIKey, ctx: &Context) -> Result<()> {
    for secret in ctx
        .secrets_of(key)
        .iter()
        .filter(|s| s.role == Role::Enforcement)
    {
        ctx.delete_own_secret(key, &secret.namespace, &secret.name)
            .await?;
    }
    Ok(())
}

/// Deletes every Secret devportal wrote for `key` (never a consumer's own Secret): those the
/// cache knows, plus — for Secrets written a moment ago — the consumer copy by name and the
/// enforcement Secrets carrying the key's uid in the enforcement namespace.
pub(super) async fn remove_all(key: &APIKey, ctx: &Context) -> Result<()> {
    let namespace = key.namespace().unwrap_or_default();
    let mut targets: Vec<(String, String)> = ctx
        .secrets_of(key)
        .into_iter()
        .map(|s| (s.namespace, s.name))
        .collect();
    if key.spec.secret_ref.is_none() {
        targets.push((namespace.clone(), secrets::consumer_secret_name(key)));
        targets.push((namespace, secrets::legacy_consumer_name(key)));
    }
    if let Some(uid) = key.metadata.uid.as_deref().filter(|u| !u.is_empty()) {
        let enforcement_namespace = ctx.enforcement.get();
        let selector = format!("{APIKEY_UID_LABEL}={uid}");
        let listed = ctx
            .secret_api(&enforcement_namespace)
            .list_metadata(&kube::api::ListParams::default().labels(&selector))
            .await?;
        targets.extend(
            listed
                .items
                .into_iter()
                .filter_map(|s| s.metadata.name)
                .map(|name| (enforcement_namespace.clone(), name)),
        );
    }
    targets.sort();
    targets.dedup();
    for (namespace, name) in targets {
        ctx.delete_own_secret(key, &namespace, &name).await?;
    }
    Ok(())
}

/// A test hook: when `DEVPORTAL_CRASH_AT` names this point — `<point>`, or `<point>:<namespace>/
/// <name>` for one APIKey only (other tests' keys in the same cluster reach the point too) — the
/// process exits here at once, as if killed. Integration tests use it to prove a restart neither
/// duplicates nor loses a key. Only in builds with the `testing` feature.
#[cfg(feature = "testing")]
pub(super) fn crash_point(name: &str, key: &APIKey) {
    static CRASH_AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let Some(wanted) = CRASH_AT
        .get_or_init(|| std::env::var("DEVPORTAL_CRASH_AT").ok())
        .as_deref()
    else {
        return;
    };
    let this_key = format!("{name}:{}", object_id(&key.metadata));
    if wanted == name || wanted == this_key {
        eprintln!("DEVPORTAL_CRASH_AT={wanted}: exiting");
        std::process::exit(86);
    }
}

/// Without the `testing` feature there are no crash points.
#[cfg(not(feature = "testing"))]
pub(super) fn crash_point(_name: &str, _key: &APIKey) {}

#[cfg(test)]
mod tests {
    use kube::runtime::watcher;

    use super::*;
    use crate::controller::secret_cache::SecretCache;
    use crate::resources::APIKeySpec;

    #[test]
    fn an_enforced_key_whose_copy_lacks_the_mac_is_not_settled_until_it_has_it() {
        let mut key = APIKey::new("k", APIKeySpec::new("toys", "gold"));
        key.metadata.namespace = Some("team".into());
        key.metadata.uid = Some("uid-k".into());
        let target = Enforcement {
            namespace: "kuadrant-system".into(),
            labels: secrets::enforcement_labels(
                "uid-k",
                secrets::ProductId {
                    namespace: "team",
                    name: "toys",
                },
                &[],
            )
            .unwrap(),
            tier: "gold".into(),
            user_id: "consumer".into(),
            expires_at: None,
        };
        let value = keys::generate("dpk").unwrap();
        let enforced = secrets::enforcement_secret(&key, &target, &value);
        let reference = SecretKeyRef {
            name: secrets::consumer_secret_name(&key),
            key: API_KEY_DATA.into(),
        };
        let settled_with = |copy: Secret| {
            let cache = SecretCache::default();
            cache.apply(&watcher::Event::Apply(enforced.clone()));
            cache.apply(&watcher::Event::Apply(copy));
            let ours = cache.owned_by("team", "k");
            settled(&key, &ours, Some(&enforced), &reference).is_some()
        };
        // As the previous release wrote it: read with care, and given its MAC.
        assert!(!settled_with(secrets::consumer_secret(&key, &value)));
        let vouched = secrets::vouched_consumer_secret(&key, &value, "ab".repeat(32));
        assert!(settled_with(vouched));
    }
}
