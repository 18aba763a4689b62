//! The requester's e-mail: what passes for an address in `spec.requestedBy.email`, and whether
//! reviewers may trust it ([`EMAIL_VERIFIED_ANNOTATION`]).
//!
//! An e-mail is verified when it came from the requester's identity: `userInfo.extra` (see
//! [`super::mutate::email_from_extra`]), or a trusted front end acting for the user (it may
//! impersonate them, so it speaks for them). Anything else is what the client typed — perhaps the
//! product team's own address — and is marked unverified, so the inbox never presents it as the
//! requester's.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation, RemoveOperation};

use crate::names::EMAIL_VERIFIED_ANNOTATION;
use crate::resources::APIKey;

/// Whether `s` looks like an e-mail address: one `@`, a non-empty local part, a dotted domain,
/// no whitespace or control characters, at most 254 bytes.
pub fn plausible_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\\\"".contains(c))
}

/// Where a new key's e-mail came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The requester's identity, or a trusted front end acting for them.
    Identity,
    /// Only the client's say-so.
    Client,
}

/// The value of [`EMAIL_VERIFIED_ANNOTATION`] for a key whose e-mail is `email` from `source`:
/// none without an e-mail.
pub fn verified_value(email: Option<&str>, source: Source) -> Option<&'static str> {
    email.map(|_| match source {
        Source::Identity => "true",
        Source::Client => "false",
    })
}

/// The key's [`EMAIL_VERIFIED_ANNOTATION`], if it has one.
pub fn verified_annotation(key: &APIKey) -> Option<&str> {
    key.metadata
        .annotations
        .as_ref()?
        .get(EMAIL_VERIFIED_ANNOTATION)
        .map(String::as_str)
}

/// The patch operation that makes `key`'s [`EMAIL_VERIFIED_ANNOTATION`] read `wanted` (absent for
/// `None`), if it does not already. `earlier` is the patch so far: when it creates the
/// annotations map, the annotation is added into it rather than replacing it.
pub fn verified_patch(
    key: &APIKey,
    wanted: Option<&str>,
    earlier: &[PatchOperation],
) -> Option<PatchOperation> {
    if verified_annotation(key) == wanted {
        return None;
    }
    let annotations = PointerBuf::from_tokens(["metadata", "annotations"]);
    let pointer = PointerBuf::from_tokens(["metadata", "annotations", EMAIL_VERIFIED_ANNOTATION]);
    let map_created = earlier
        .iter()
        .any(|op| matches!(op, PatchOperation::Add(add) if add.path == annotations));
    Some(match wanted {
        None => PatchOperation::Remove(RemoveOperation { path: pointer }),
        Some(value) if key.metadata.annotations.is_some() || map_created => {
            PatchOperation::Add(AddOperation {
                path: pointer,
                value: value.into(),
            })
        }
        Some(value) => PatchOperation::Add(AddOperation {
            path: annotations,
            value: serde_json::json!({ EMAIL_VERIFIED_ANNOTATION: value }),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::APIKeySpec;

    fn key(annotations: Option<&[(&str, &str)]>) -> serde_json::Value {
        let mut key = APIKey::new("k", APIKeySpec::new("toys", "gold"));
        key.metadata.annotations = annotations.map(|a| {
            a.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        });
        serde_json::to_value(key).unwrap()
    }

    fn patched(mut doc: serde_json::Value, ops: Vec<PatchOperation>) -> serde_json::Value {
        json_patch::patch(&mut doc, &ops).unwrap();
        doc["metadata"]["annotations"].clone()
    }

    fn typed(doc: &serde_json::Value) -> APIKey {
        serde_json::from_value(doc.clone()).unwrap()
    }

    #[test]
    fn only_an_identity_verifies_an_email() {
        assert_eq!(
            verified_value(Some("a@x.org"), Source::Identity),
            Some("true")
        );
        assert_eq!(
            verified_value(Some("team@x.org"), Source::Client),
            Some("false")
        );
        assert_eq!(verified_value(None, Source::Client), None);
    }

    #[test]
    fn the_annotation_is_set_next_to_others_and_never_clobbers_them() {
        // No annotations, and an earlier operation of the same patch created the map.
        let bare = key(None);
        let earlier = vec![PatchOperation::Add(AddOperation {
            path: PointerBuf::from_tokens(["metadata", "annotations"]),
            value: serde_json::json!({"devportal.kuadrant.io/requested-via": "portal"}),
        })];
        let op = verified_patch(&typed(&bare), Some("false"), &earlier).unwrap();
        let mut ops = earlier;
        ops.push(op);
        assert_eq!(
            patched(bare.clone(), ops),
            serde_json::json!({"devportal.kuadrant.io/requested-via": "portal", EMAIL_VERIFIED_ANNOTATION: "false"})
        );
        // No annotations at all.
        let op = verified_patch(&typed(&bare), Some("true"), &[]).unwrap();
        assert_eq!(
            patched(bare, vec![op]),
            serde_json::json!({ EMAIL_VERIFIED_ANNOTATION: "true" })
        );
        // A forged value is replaced, a stray one removed, a right one left alone.
        let forged = key(Some(&[(EMAIL_VERIFIED_ANNOTATION, "true"), ("team", "a")]));
        let op = verified_patch(&typed(&forged), Some("false"), &[]).unwrap();
        assert_eq!(
            patched(forged.clone(), vec![op]),
            serde_json::json!({ EMAIL_VERIFIED_ANNOTATION: "false", "team": "a" })
        );
        let op = verified_patch(&typed(&forged), None, &[]).unwrap();
        assert_eq!(
            patched(forged.clone(), vec![op]),
            serde_json::json!({"team": "a"})
        );
        assert_eq!(verified_patch(&typed(&forged), Some("true"), &[]), None);
    }
}
