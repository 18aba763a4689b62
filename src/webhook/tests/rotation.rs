//! Rotation requests at admission: the requester and admins may ask for one, a reviewer of the
//! product and other users may not; the token must be a short single line; a key whose value
//! comes from the consumer's own Secret is refused with a pointer to that Secret.

use serde_json::{Value, json};

use super::{allowed, approve, denied, key, review, user};
use crate::names::ROTATION_REQUEST_ANNOTATION;
use crate::webhook::review::Endpoint;
use crate::webhook::rules::Reason;

/// The consumer's approved key, and the same key asking for rotation with `token`.
fn approved_and_asking(token: &str) -> (Value, Value) {
    let old = approve(key("toys", "gold", Some("consumer")), "owner");
    let mut new = old.clone();
    new["metadata"]["annotations"] = json!({ ROTATION_REQUEST_ANNOTATION: token });
    (old, new)
}

#[tokio::test]
async fn the_requester_and_admins_may_ask_for_a_rotation() {
    let (old, new) = approved_and_asking("2026-12-01T07:00:00Z");
    for who in ["consumer", "admin"] {
        let body = review("UPDATE", user(who), new.clone(), Some(old.clone()));
        allowed(Endpoint::ValidateKeys, &body).await;
    }
    // Asking again with a new token, and withdrawing the annotation, are the requester's too.
    let (_, again) = approved_and_asking("2026-12-01T08:00:00Z");
    let body = review("UPDATE", user("consumer"), again, Some(new.clone()));
    allowed(Endpoint::ValidateKeys, &body).await;
    let body = review("UPDATE", user("consumer"), old.clone(), Some(new));
    allowed(Endpoint::ValidateKeys, &body).await;
}

#[tokio::test]
async fn a_reviewer_or_another_user_may_not_rotate_someone_elses_key() {
    let (old, new) = approved_and_asking("2026-12-01T07:00:00Z");
    for who in ["owner", "consumer2"] {
        let body = review("UPDATE", user(who), new.clone(), Some(old.clone()));
        denied(
            Endpoint::ValidateKeys,
            &body,
            Reason::GuardedMetadata,
            403,
            "only the key's requester \"consumer\" or an API admin may ask for its rotation",
        )
        .await;
    }
    // Nor withdraw a request the requester made.
    let body = review("UPDATE", user("owner"), old, Some(new));
    denied(
        Endpoint::ValidateKeys,
        &body,
        Reason::GuardedMetadata,
        403,
        "rotation",
    )
    .await;
}

#[tokio::test]
async fn the_token_is_a_short_single_line() {
    for bad in ["", "a\nb", "x\u{202E}y", &"9".repeat(65)] {
        let (old, new) = approved_and_asking(bad);
        let body = review("UPDATE", user("consumer"), new, Some(old));
        denied(
            Endpoint::ValidateKeys,
            &body,
            Reason::BadRotationRequest,
            422,
            "use a single-line token of at most 64 characters",
        )
        .await;
    }
    let (old, new) = approved_and_asking(&"9".repeat(64));
    allowed(
        Endpoint::ValidateKeys,
        &review("UPDATE", user("consumer"), new, Some(old)),
    )
    .await;
}

#[tokio::test]
async fn a_key_with_its_own_secret_is_rotated_in_that_secret() {
    let (mut old, mut new) = approved_and_asking("2026-12-01T07:00:00Z");
    old["spec"]["secretRef"] = json!({"name": "my-key"});
    new["spec"]["secretRef"] = json!({"name": "my-key"});
    let body = review("UPDATE", user("consumer"), new.clone(), Some(old));
    denied(
        Endpoint::ValidateKeys,
        &body,
        Reason::BadRotationRequest,
        422,
        "this key's value comes from your Secret \"my-key\": write a new value there",
    )
    .await;
    // Not at creation either.
    let body = review("CREATE", user("consumer"), new, None);
    denied(
        Endpoint::ValidateKeys,
        &body,
        Reason::BadRotationRequest,
        422,
        "your Secret \"my-key\"",
    )
    .await;
}
