//! devportal's keyed MAC of the key values it generates: HMAC-SHA256 under a key only the
//! controller holds (see `controller::mac_key`), over the value, the APIKey's uid and the key's
//! rotation generation (the rotation token whose value it is; none before the first rotation).
//!
//! The consumer Secret carries the MAC of its value in [`VALUE_MAC_ANNOTATION`]. Consumers can
//! write their own Secret, so a value found there is taken back (a key Approved again, its
//! enforcement Secret gone meanwhile) only when the MAC verifies: a value written by hand, one
//! copied from another key (another uid) or one from before a rotation (another generation) does
//! not, whatever MAC comes with it. The MAC is no secret and says nothing about the value.
//!
//! [`VALUE_MAC_ANNOTATION`]: crate::names::VALUE_MAC_ANNOTATION

use std::fmt;

use ring::hmac;

use super::ApiKeyValue;
use crate::{Error, Result};

/// Length of the MAC key in bytes.
pub const MAC_KEY_LEN: usize = 32;

/// Separates these MACs from any other use of the key (and from later versions of the scheme).
const DOMAIN: &[u8] = b"devportal.kuadrant.io/value-mac/v1";

/// The controller's MAC key. Its `Debug` output is redacted.
pub struct ValueMac(hmac::Key);

impl fmt::Debug for ValueMac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ValueMac(<redacted>)")
    }
}

impl ValueMac {
    /// The MAC key held in `bytes`, if it has exactly [`MAC_KEY_LEN`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        (bytes.len() == MAC_KEY_LEN).then(|| Self(hmac::Key::new(hmac::HMAC_SHA256, bytes)))
    }

    /// A fresh MAC key from the operating system's random source.
    pub fn new_key() -> Result<[u8; MAC_KEY_LEN]> {
        let mut key = [0u8; MAC_KEY_LEN];
        getrandom::fill(&mut key)
            .map_err(|e| Error::Config(format!("the OS random source failed: {e}")))?;
        Ok(key)
    }

    /// The MAC (lowercase hex) of `value` as the key value of the APIKey with `uid` at rotation
    /// `generation`.
    pub fn of(&self, uid: &str, generation: Option<&str>, value: &ApiKeyValue) -> String {
        let tag = hmac::sign(&self.0, &message(uid, generation, value));
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `mac` is the MAC of `value` for the APIKey with `uid` at rotation `generation`
    /// (compared in constant time).
    pub fn vouches(
        &self,
        uid: &str,
        generation: Option<&str>,
        value: &ApiKeyValue,
        mac: &str,
    ) -> bool {
        let Some(tag) = from_hex(mac) else {
            return false;
        };
        !uid.is_empty() && hmac::verify(&self.0, &message(uid, generation, value), &tag).is_ok()
    }
}

/// The MAC's input: the domain, then each field length-prefixed (no two inputs read the same).
fn message(uid: &str, generation: Option<&str>, value: &ApiKeyValue) -> Vec<u8> {
    let mut message = DOMAIN.to_vec();
    let mut field = |bytes: &[u8]| {
        message.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        message.extend_from_slice(bytes);
    };
    field(uid.as_bytes());
    match generation {
        None => field(&[0]),
        Some(token) => field(&[&[1u8][..], token.as_bytes()].concat()),
    }
    field(value.expose().as_bytes());
    message
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys;

    fn mac() -> ValueMac {
        ValueMac::from_bytes(&ValueMac::new_key().unwrap()).unwrap()
    }

    #[test]
    fn a_mac_vouches_for_its_value_its_key_and_its_generation_only() {
        let mac = mac();
        let value = keys::generate("dpk").unwrap();
        let first = mac.of("uid-a", None, &value);
        assert!(mac.vouches("uid-a", None, &value, &first));
        // Another key's value with its MAC, copied to this key: another uid.
        assert!(!mac.vouches("uid-b", None, &value, &first));
        // A value from before a rotation, written back with its MAC: another generation.
        let rotated = mac.of("uid-a", Some("2026-12-01T07:00:00Z"), &value);
        assert!(mac.vouches("uid-a", Some("2026-12-01T07:00:00Z"), &value, &rotated));
        assert!(!mac.vouches("uid-a", None, &value, &rotated));
        assert!(!mac.vouches("uid-a", Some("2026-12-02T07:00:00Z"), &value, &rotated));
        // Another value under this key's MAC; a MAC made with another MAC key.
        let other = keys::generate("dpk").unwrap();
        assert!(!mac.vouches("uid-a", None, &other, &first));
        assert!(!self::mac().vouches("uid-a", None, &value, &first));
    }

    #[test]
    fn nothing_but_a_well_formed_mac_vouches() {
        let mac = mac();
        let value = keys::generate("dpk").unwrap();
        let good = mac.of("uid", None, &value);
        assert_eq!(good.len(), 64);
        let not_hex = "g".repeat(64);
        for bad in ["", "zz", &good[..62], &good[..63], &not_hex, "é"] {
            assert!(!mac.vouches("uid", None, &value, bad), "{bad:?}");
        }
        assert!(!mac.vouches("", None, &value, &mac.of("", None, &value)));
    }

    #[test]
    fn only_a_key_of_the_right_length_is_taken_and_none_is_printed() {
        assert!(ValueMac::from_bytes(&[7; 31]).is_none());
        assert!(ValueMac::from_bytes(&[7; 33]).is_none());
        let mac = ValueMac::from_bytes(&[7; MAC_KEY_LEN]).unwrap();
        assert_eq!(format!("{mac:?}"), "ValueMac(<redacted>)");
    }
}
