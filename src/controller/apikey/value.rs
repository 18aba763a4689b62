//! Which value a generated key has, and where devportal may take it from.
//!
//! Only from two places, never from a Secret merely carrying devportal's marks (anyone may copy
//! those into a Secret of their own):
//! - the key's **enforcement Secrets in the enforcement namespace**: only devportal writes there
//!   under the shipped RBAC, so a well-formed value there is devportal's own — also one issued by
//!   an earlier release, before values carried a MAC (that is how an upgrade keeps every enforced
//!   key's value);
//! - the key's **consumer Secret** (in the key's namespace, which its consumer may write) only
//!   when devportal's MAC in it ([`crate::keys::ValueMac`]) vouches for the value as this key's
//!   (its uid) at its current rotation generation. A value written there by hand, another key's
//!   value (leaked, or the consumer's own other key) or the value from before a rotation is not
//!   taken, whatever it comes with.
//!
//! When both hold a value the enforcement Secret's wins and the consumer Secret is restored from
//! it. When neither holds one devportal may take, an Approved key is issued a new value.

use k8s_openapi::api::core::v1::Secret;

use crate::Result;
use crate::controller::context::Context;
use crate::controller::secret_cache::OwnedSecret;
use crate::keys::{self, ApiKeyValue, ValueMac};
use crate::kube_ext::object_id;
use crate::resources::APIKey;
use crate::secrets::{self, Role};

/// What the key's Secrets hold.
pub(super) enum Found {
    /// A value devportal may take.
    Value(ApiKeyValue),
    /// None; `refused` names the consumer Secret when it held a value devportal did not issue
    /// for this key.
    Nothing { refused: Option<String> },
}

/// Whether the consumer Secret `secret` holds a value devportal issued for `key` at rotation
/// `generation`: the value, if its MAC vouches for it.
fn vouched(
    secret: &Secret,
    key: &APIKey,
    generation: Option<&str>,
    mac: &ValueMac,
) -> Option<ApiKeyValue> {
    let value = secrets::value_of(secret)?;
    let uid = key.metadata.uid.as_deref().unwrap_or_default();
    let claimed = secrets::value_mac(&secret.metadata)?;
    (keys::verify(value.expose()) && mac.vouches(uid, generation, &value, claimed)).then_some(value)
}

/// The key's value: from `enforced` (its enforcement Secret where it should be, read live), then
/// from its other enforcement Secrets the cache knows in the enforcement namespace (`ours`, see
/// `Context::secrets_of`: a tier change in progress, a withdrawal), then from `consumer` (its
/// consumer Secret, read live) if vouched for.
pub(super) async fn find(
    key: &APIKey,
    enforced: Option<&Secret>,
    consumer: Option<&Secret>,
    ours: &[OwnedSecret],
    (generation, mac): (Option<&str>, &ValueMac),
    ctx: &Context,
) -> Result<Found> {
    let well_formed =
        |secret: &Secret| secrets::value_of(secret).filter(|value| keys::verify(value.expose()));
    if let Some(value) = enforced.and_then(well_formed) {
        return Ok(Found::Value(value));
    }
    let elsewhere = ours.iter().filter(|s| {
        s.role == Role::Enforcement
            && enforced.is_none_or(|e| e.metadata.name.as_deref() != Some(s.name.as_str()))
    });
    for other in elsewhere {
        let Some(secret) = ctx
            .secret_api(&other.namespace)
            .get_opt(&other.name)
            .await?
        else {
            continue;
        };
        if secrets::belongs_to(&secret.metadata, key)
            && let Some(value) = well_formed(&secret)
        {
            return Ok(Found::Value(value));
        }
    }
    let Some(consumer) = consumer else {
        return Ok(Found::Nothing { refused: None });
    };
    Ok(match vouched(consumer, key, generation, mac) {
        Some(value) => Found::Value(value),
        None => Found::Nothing {
            refused: secrets::value_of(consumer).map(|_| object_id(&consumer.metadata)),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::APIKeySpec;

    fn key(uid: &str) -> APIKey {
        let mut key = APIKey::new("k", APIKeySpec::new("toys", "gold"));
        key.metadata.namespace = Some("team".into());
        key.metadata.uid = Some(uid.into());
        key
    }

    fn mac() -> ValueMac {
        ValueMac::from_bytes(&ValueMac::new_key().unwrap()).unwrap()
    }

    #[test]
    fn a_consumer_secret_is_taken_back_only_with_the_mac_for_this_key_and_generation() {
        let (mac, k) = (mac(), key("uid-k"));
        let value = keys::generate("dpk").unwrap();
        let issued = secrets::vouched_consumer_secret(&k, &value, mac.of("uid-k", None, &value));
        assert_eq!(vouched(&issued, &k, None, &mac), Some(value.clone()));
        // The same Secret after a rotation: the value of the previous generation.
        assert_eq!(
            vouched(&issued, &k, Some("2026-12-01T07:00:00Z"), &mac),
            None
        );
        // Written without a MAC: by hand, or by a release before MACs.
        assert_eq!(
            vouched(&secrets::consumer_secret(&k, &value), &k, None, &mac),
            None
        );
        // Another key's value with its MAC, copied into this key's Secret.
        let other = keys::generate("dpk").unwrap();
        let copied =
            secrets::vouched_consumer_secret(&k, &other, mac.of("uid-other", None, &other));
        assert_eq!(vouched(&copied, &k, None, &mac), None);
        // This key's MAC, another value put beside it.
        let mut swapped = issued.clone();
        swapped.data = secrets::consumer_secret(&k, &other).data;
        assert_eq!(vouched(&swapped, &k, None, &mac), None);
        // A MAC key lost and made anew.
        assert_eq!(vouched(&issued, &k, None, &self::mac()), None);
    }

    #[test]
    fn a_value_whose_checksum_fails_is_not_taken_even_with_a_mac() {
        let (mac, k) = (mac(), key("uid-k"));
        let typo = ApiKeyValue::from_secret(format!("dpk_{}", "a".repeat(49)));
        let secret = secrets::vouched_consumer_secret(&k, &typo, mac.of("uid-k", None, &typo));
        assert_eq!(vouched(&secret, &k, None, &mac), None);
    }
}
