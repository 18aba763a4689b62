//! Rotation requests: the APIKey annotation [`ROTATION_REQUEST_ANNOTATION`], which makes the
//! controller give the key a new value and stop the old one at once. Only the key's requester (or
//! a trusted front end acting for them) and API admins may set, change or remove it — a reviewer
//! of the product, or another consumer, must not be able to take a key's working value away from
//! its holder. The token is a short single line, and a key whose value comes from the consumer's
//! own Secret (`spec.secretRef`) cannot be rotated by devportal: its holder writes a new value
//! into that Secret instead.

use k8s_openapi::api::authentication::v1::UserInfo;

use super::{Change, Checked, Reason, Verdict, delegation, lookup_failed};
use crate::names::ROTATION_REQUEST_ANNOTATION;
use crate::resources::APIKey;
use crate::webhook::lookup::Lookup;

/// The longest rotation token accepted.
pub const MAX_TOKEN_LEN: usize = 64;

/// The key's rotation request token, if it has one.
fn token(key: &APIKey) -> Option<&str> {
    key.metadata
        .annotations
        .as_ref()?
        .get(ROTATION_REQUEST_ANNOTATION)
        .map(String::as_str)
}

/// Why `token` is not a usable rotation token, if it is not.
fn token_problem(token: &str) -> Option<String> {
    if token.is_empty() {
        return Some("is empty".into());
    }
    if token.chars().count() > MAX_TOKEN_LEN {
        return Some(format!("is longer than {MAX_TOKEN_LEN} characters"));
    }
    let hidden = |c: char| {
        c.is_control()
            || ('\u{202A}'..='\u{202E}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    };
    token
        .chars()
        .any(hidden)
        .then(|| "contains a line break, a control or a bidirectional-override character".into())
}

/// Checks the rotation request of a CREATE or UPDATE of an APIKey by `user`.
pub async fn check<C: Lookup>(lookup: &C, change: Change<'_, APIKey>, user: &UserInfo) -> Checked {
    let (old, new) = match change {
        Change::Create(new) => (None, new),
        Change::Update { old, new } => (Some(old), new),
    };
    let requested = token(new);
    if old.map(token) == Some(requested) || (old.is_none() && requested.is_none()) {
        return Ok(());
    }
    if let Some(requested) = requested {
        if let Some(why) = token_problem(requested) {
            return Err(Verdict::deny(
                Reason::BadRotationRequest,
                format!(
                    "annotation {ROTATION_REQUEST_ANNOTATION} {why}: use a single-line token of at \
                     most {MAX_TOKEN_LEN} characters, such as the current time in RFC 3339"
                ),
            ));
        }
        if let Some(own) = &new.spec.secret_ref {
            return Err(Verdict::deny(
                Reason::BadRotationRequest,
                format!(
                    "this key's value comes from your Secret {:?}: write a new value there (data \
                     \"api_key\"), and the gateway enforces it instead of the old one; devportal \
                     rotates only the values it generates",
                    own.name
                ),
            ));
        }
    }
    // A CREATE's requester is checked with the request itself.
    let Some(old) = old else {
        return Ok(());
    };
    let username = user.username.as_deref().unwrap_or_default();
    let requester = old
        .spec
        .requested_by
        .as_ref()
        .map(|r| r.user_id.as_str())
        .unwrap_or_default();
    if !requester.is_empty() && username == requester {
        return Ok(());
    }
    if !requester.is_empty() && delegation::acts_for(lookup, user, requester).await? {
        return Ok(());
    }
    // Admins hold `approve` on every product in every namespace.
    let admin = lookup
        .may_approve(user, "", "")
        .await
        .map_err(|e| lookup_failed("your permissions", e))?;
    if admin {
        return Ok(());
    }
    Err(Verdict::deny(
        Reason::GuardedMetadata,
        format!(
            "only the key's requester {requester:?} or an API admin may ask for its rotation \
             (annotation {ROTATION_REQUEST_ANNOTATION}): a new value takes the old one away from \
             whoever uses it; a reviewer of the product may deny the key instead"
        ),
    ))
}
