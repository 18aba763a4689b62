//! The validating webhook on APIKey CREATE: the product exists, is Published (or the user may
//! approve it) and offers the tier; the requester is the user with a plausible e-mail; the expiry
//! lies within the maximum lifetime; the key limit (more in `key_limit.rs`).

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::json;

use super::{allowed, cluster, denied, key, limits, now, review, send, user};
use crate::resources::APIKey;
use crate::webhook::review::{Endpoint, Webhook};
use crate::webhook::rules::Reason;

#[tokio::test]
async fn a_consumer_requests_a_published_tier() {
    let body = review(
        "CREATE",
        user("consumer"),
        key("toys", "gold", Some("consumer")),
        None,
    );
    allowed(Endpoint::ValidateKeys, &body).await;
}

#[tokio::test]
async fn an_unknown_product_is_refused_with_where_to_look() {
    let body = review(
        "CREATE",
        user("consumer"),
        key("nope", "gold", Some("consumer")),
        None,
    );
    denied(
        Endpoint::ValidateKeys,
        &body,
        Reason::ProductNotFound,
        422,
        "APIProduct \"nope\" not found in namespace \"apps\"",
    )
    .await;
}

#[tokio::test]
async fn draft_products_are_for_owners_and_admins() {
    let body = review(
        "CREATE",
        user("consumer"),
        key("draft", "gold", Some("consumer")),
        None,
    );
    denied(
        Endpoint::ValidateKeys,
        &body,
        Reason::ProductNotPublished,
        403,
        "APIProduct apps/draft is a Draft",
    )
    .await;
    for who in ["owner", "admin"] {
        allowed(
            Endpoint::ValidateKeys,
            &review("CREATE", user(who), key("draft", "gold", Some(who)), None),
        )
        .await;
    }
}

#[tokio::test]
async fn the_tier_must_be_discovered() {
    let body = review(
        "CREATE",
        user("consumer"),
        key("toys", "platinum", Some("consumer")),
        None,
    );
    denied(
        Endpoint::ValidateKeys,
        &body,
        Reason::UnknownTier,
        422,
        "\"platinum\" is not offered by APIProduct apps/toys; choose one of: gold, silver",
    )
    .await;
    let body = review(
        "CREATE",
        user("consumer"),
        key("bare", "gold", Some("consumer")),
        None,
    );
    denied(
        Endpoint::ValidateKeys,
        &body,
        Reason::NoPlans,
        422,
        "offers no plan tiers yet",
    )
    .await;
}

#[tokio::test]
async fn the_requester_must_be_the_user_and_the_email_plausible() {
    let body = review(
        "CREATE",
        user("consumer"),
        key("toys", "gold", Some("admin")),
        None,
    );
    denied(
        Endpoint::ValidateKeys,
        &body,
        Reason::RequesterMismatch,
        403,
        "must be your own username \"consumer\"",
    )
    .await;
    for bad in [
        "not-an-email",
        "a@b",
        "two@@example.com",
        "sp ace@example.com",
        "x@.example.com",
    ] {
        let mut object = key("toys", "gold", Some("consumer"));
        object["spec"]["requestedBy"]["email"] = json!(bad);
        let body = review("CREATE", user("consumer"), object, None);
        denied(
            Endpoint::ValidateKeys,
            &body,
            Reason::InvalidEmail,
            422,
            "is not an e-mail address",
        )
        .await;
    }
    let mut object = key("toys", "gold", Some("consumer"));
    object["spec"]["requestedBy"]["email"] = json!("consumer+keys@mail.example.com");
    allowed(
        Endpoint::ValidateKeys,
        &review("CREATE", user("consumer"), object, None),
    )
    .await;
}

#[tokio::test]
async fn expiry_lies_in_the_future_within_the_maximum_lifetime() {
    let with_expiry = |at: Timestamp| {
        let mut k = key("toys", "gold", Some("consumer"));
        k["spec"]["expiresAt"] = json!(at.to_string());
        review("CREATE", user("consumer"), k, None)
    };
    let day = SignedDuration::from_hours(24);
    denied(
        Endpoint::ValidateKeys,
        &with_expiry(now() - day),
        Reason::ExpiresInPast,
        422,
        "is not in the future",
    )
    .await;
    denied(
        Endpoint::ValidateKeys,
        &with_expiry(now() + day * 31),
        Reason::ExpiresTooLate,
        422,
        "beyond the maximum key lifetime of 30 days",
    )
    .await;
    allowed(Endpoint::ValidateKeys, &with_expiry(now() + day * 29)).await;
}

#[tokio::test]
async fn the_live_keys_guardrail_counts_per_user_and_product() {
    let existing = |name: &str, phase: Option<&str>| {
        let mut k = key("toys", "gold", Some("consumer"));
        k["metadata"]["name"] = json!(name);
        if let Some(phase) = phase {
            k["status"] = json!({"phase": phase});
        }
        serde_json::from_value::<APIKey>(k).unwrap()
    };
    let webhook = Webhook::new(
        cluster()
            .with_key(existing("a", None))
            .with_key(existing("b", Some("Approved")))
            .with_key(existing("c", Some("Denied"))),
        limits(),
    );
    let body = review(
        "CREATE",
        user("consumer"),
        key("toys", "gold", Some("consumer")),
        None,
    );
    let (reply, response) = send(&webhook, Endpoint::ValidateKeys, &body).await;
    assert_eq!(reply.outcome.reason, Reason::TooManyKeys);
    assert_eq!(response["status"]["code"], 403);
    assert!(
        response["status"]["message"].as_str().unwrap().contains(
            "2 keys already exist for \"consumer\" on APIProduct apps/toys; the limit is 2"
        )
    );

    // Another user, or another product, is not affected.
    let body = review(
        "CREATE",
        user("consumer2"),
        key("toys", "gold", Some("consumer2")),
        None,
    );
    assert!(
        send(&webhook, Endpoint::ValidateKeys, &body)
            .await
            .0
            .outcome
            .reason
            .allows()
    );
    let body = review(
        "CREATE",
        user("consumer"),
        key("other", "gold", Some("consumer")),
        None,
    );
    assert!(
        send(&webhook, Endpoint::ValidateKeys, &body)
            .await
            .0
            .outcome
            .reason
            .allows()
    );
}
