//! API-key values: generation from the operating system's CSPRNG and offline verification.
//!
//! A key reads `<prefix>_<body><checksum>`: the body is 256 random bits in base62 (43 characters,
//! fixed width), the checksum the CRC32 of the body in base62 (6 characters, fixed width). Secret
//! scanners find leaked keys by the prefix, and a typo is caught offline by the checksum.

mod mac;

use std::fmt;

pub use mac::{MAC_KEY_LEN, ValueMac};

use crate::{Error, Result};

/// The prefix used when none is configured.
pub const DEFAULT_PREFIX: &str = "dpk";

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_BYTES: usize = 32;
const BODY_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;

/// A key value. Its `Debug` output is redacted so it cannot leak through logs or errors.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyValue(String);

impl ApiKeyValue {
    /// Wraps a value read from a Secret.
    pub fn from_secret(value: String) -> Self {
        Self(value)
    }

    /// The key itself, for writing into a Secret and nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeyValue(<redacted>)")
    }
}

/// Whether `prefix` is usable: 1–16 lowercase ASCII letters or digits.
pub fn valid_prefix(prefix: &str) -> bool {
    (1..=16).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Generates a new key with `prefix` from 256 bits of OS randomness.
pub fn generate(prefix: &str) -> Result<ApiKeyValue> {
    if !valid_prefix(prefix) {
        return Err(Error::Config(format!(
            "key prefix {prefix:?} must be 1-16 lowercase letters or digits"
        )));
    }
    let mut random = [0u8; RANDOM_BYTES];
    getrandom::fill(&mut random)
        .map_err(|e| Error::Config(format!("the OS random source failed: {e}")))?;
    let body = base62_fixed(&random, BODY_LEN);
    let checksum = checksum(&body);
    Ok(ApiKeyValue(format!("{prefix}_{body}{checksum}")))
}

/// Whether `key` is well formed and its checksum matches. Works offline, without the issuer.
pub fn verify(key: &str) -> bool {
    let Some((prefix, rest)) = key.rsplit_once('_') else {
        return false;
    };
    if !valid_prefix(prefix)
        || rest.len() != BODY_LEN + CHECKSUM_LEN
        || !rest.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return false;
    }
    let (body, sum) = rest.split_at(BODY_LEN);
    checksum(body) == sum
}

/// The shortest value a consumer may bring in `spec.secretRef` unless configured otherwise.
pub const DEFAULT_OWN_MIN_LENGTH: usize = 32;

/// What is wrong with a value a consumer brought, if anything: shorter than `min_length`, or a
/// character outside printable ASCII without space (`!` to `~`, 0x21–0x7E). The answer says why
/// and never repeats the value, its length or the offending character.
pub fn own_value_problem(value: &str, min_length: usize) -> Option<String> {
    if !value.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Some(
            "contains a character outside printable ASCII (letters, digits and punctuation \
             from '!' to '~'; no whitespace, control or non-ASCII characters)"
                .into(),
        );
    }
    (value.len() < min_length)
        .then(|| format!("is shorter than the minimum of {min_length} characters"))
}

fn checksum(body: &str) -> String {
    base62_fixed(
        &crc32fast::hash(body.as_bytes()).to_be_bytes(),
        CHECKSUM_LEN,
    )
}

/// Big-endian bytes as a base62 number, left-padded with `0` to `width` digits.
fn base62_fixed(bytes: &[u8], width: usize) -> String {
    let mut number = bytes.to_vec();
    let mut digits = Vec::with_capacity(width);
    while number.iter().any(|&b| b != 0) {
        let mut remainder = 0u32;
        for byte in number.iter_mut() {
            let value = (remainder << 8) | u32::from(*byte);
            *byte = (value / 62) as u8;
            remainder = value % 62;
        }
        digits.push(ALPHABET[remainder as usize]);
    }
    digits.resize(width.max(digits.len()), b'0');
    digits.reverse();
    String::from_utf8(digits).expect("base62 digits are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape_and_verify() {
        let key = generate("dpk").unwrap();
        let value = key.expose();
        assert!(value.starts_with("dpk_"));
        assert_eq!(value.len(), 4 + BODY_LEN + CHECKSUM_LEN);
        assert!(verify(value));
        assert_ne!(generate("dpk").unwrap(), key, "every key is fresh");
    }

    #[test]
    fn a_single_typo_fails_the_checksum() {
        let key = generate("acme").unwrap();
        let value = key.expose();
        for i in 5..value.len() {
            let mut typo = value.as_bytes().to_vec();
            typo[i] = if typo[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(typo).unwrap();
            assert!(!verify(&typo), "typo at {i} went unnoticed");
        }
    }

    #[test]
    fn malformed_keys_do_not_verify() {
        for bad in [
            "",
            "dpk",
            "dpk_",
            "DPK_abc",
            "dpk_!!!",
            "no-underscore",
            &"x".repeat(60),
        ] {
            assert!(!verify(bad), "{bad:?}");
        }
    }

    #[test]
    fn base62_is_fixed_width_and_exact() {
        assert_eq!(base62_fixed(&[0, 0], 3), "000");
        assert_eq!(base62_fixed(&[0, 61], 2), "0z");
        assert_eq!(base62_fixed(&[0, 62], 2), "10");
        assert_eq!(
            base62_fixed(&[0xff; 32], BODY_LEN).len(),
            BODY_LEN,
            "2^256-1 fits 43 digits"
        );
    }

    #[test]
    fn debug_output_is_redacted() {
        let key = generate("dpk").unwrap();
        let debug = format!("{key:?}");
        assert!(!debug.contains(key.expose()));
        assert!(debug.contains("redacted"));
    }

    #[test]
    fn brought_values_need_the_length_and_character_set_and_are_never_quoted() {
        let good = "Abc-123_xyz.!~".repeat(3);
        assert_eq!(own_value_problem(&good, 32), None);
        assert_eq!(
            own_value_problem(generate("dpk").unwrap().expose(), 32),
            None
        );
        let short = "s3cret-but-short";
        let why = own_value_problem(short, 32).expect("too short");
        assert!(why.contains("minimum of 32"), "{why}");
        assert!(!why.contains(short) && !why.contains("16"), "{why}");
        assert_eq!(
            own_value_problem(short, 16),
            None,
            "the minimum is configurable"
        );
        for bad in [
            "with space ",
            "tab\there",
            "line\nbreak",
            "caf\u{e9}",
            "nul\0",
        ] {
            let value = format!("{bad}{}", "x".repeat(40));
            let why = own_value_problem(&value, 32).expect("bad character");
            assert!(
                why.contains("printable ASCII") && !why.contains(bad.trim()),
                "{why}"
            );
        }
    }

    #[test]
    fn bad_prefixes_are_refused() {
        assert!(generate("Has_Underscore").is_err());
        assert!(generate("").is_err());
        assert!(generate("waytoolongprefixvalue").is_err());
    }
}
