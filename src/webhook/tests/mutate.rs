//! The mutating webhook: the requester stamped from `userInfo` (with warnings for what it
//! replaces), the controller's finalizer added at CREATE, the reviewer and time stamped on every
//! approval write.

use serde_json::json;

use super::{allowed, denied, key, patched, review, user};
use crate::names::FINALIZER;
use crate::webhook::review::Endpoint;
use crate::webhook::rules::Reason;

#[tokio::test]
async fn create_stamps_the_requester_from_user_info() {
    let mut object = key("toys", "gold", None);
    object["spec"]["expiresAt"] = json!("2026-06-20T00:00:00Z");
    let response = allowed(
        Endpoint::MutateKeys,
        &review("CREATE", user("consumer"), object.clone(), None),
    )
    .await;
    assert!(
        response.get("warnings").is_none(),
        "nothing overwritten, no warning"
    );
    let stamped = patched(&response, &object);
    assert_eq!(
        stamped["spec"]["requestedBy"],
        json!({"userId": "consumer"})
    );
}

#[tokio::test]
async fn create_overwrites_a_spoofed_requester_with_a_warning() {
    let mut object = key("toys", "gold", Some("someone-else"));
    object["spec"]["requestedBy"]["email"] = json!("me@example.com");
    object["spec"]["expiresAt"] = json!("2026-06-20T00:00:00Z");
    let response = allowed(
        Endpoint::MutateKeys,
        &review("CREATE", user("consumer"), object.clone(), None),
    )
    .await;
    let warnings = response["warnings"].as_array().unwrap();
    assert_eq!(
        warnings.len(),
        2,
        "the requester, and the e-mail kept unverified"
    );
    let said = |needle: &str| {
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains(needle))
    };
    assert!(said("unverified"));
    assert!(said(
        "\"someone-else\" was replaced with your username \"consumer\""
    ));
    let stamped = patched(&response, &object);
    assert_eq!(
        stamped["spec"]["requestedBy"],
        json!({"userId": "consumer", "email": "me@example.com"})
    );
}

#[tokio::test]
async fn email_comes_from_the_authenticator_when_it_provides_one() {
    let mut object = key("toys", "gold", Some("consumer"));
    object["spec"]["requestedBy"]["email"] = json!("typo@example.com");
    let mut who = user("consumer");
    who["extra"] = json!({"example.com/email": ["consumer@corp.example"]});
    let response = allowed(
        Endpoint::MutateKeys,
        &review("CREATE", who, object.clone(), None),
    )
    .await;
    assert!(
        response["warnings"][0]
            .as_str()
            .unwrap()
            .contains("\"typo@example.com\" was replaced")
    );
    let stamped = patched(&response, &object);
    assert_eq!(
        stamped["spec"]["requestedBy"]["email"],
        "consumer@corp.example"
    );
}

#[tokio::test]
async fn a_create_gets_the_controller_finalizer_and_nothing_else_when_already_right() {
    let mut object = key("toys", "gold", Some("consumer"));
    object["spec"]["expiresAt"] = json!("2026-06-20T00:00:00Z");
    let response = allowed(
        Endpoint::MutateKeys,
        &review("CREATE", user("consumer"), object.clone(), None),
    )
    .await;
    let stamped = patched(&response, &object);
    assert_eq!(stamped["metadata"]["finalizers"], json!([FINALIZER]));
    assert_eq!(
        stamped["spec"], object["spec"],
        "a correct requester is left alone"
    );

    let mut finalized = object.clone();
    finalized["metadata"]["finalizers"] = json!(["example.com/other", FINALIZER]);
    let response = allowed(
        Endpoint::MutateKeys,
        &review("CREATE", user("consumer"), finalized, None),
    )
    .await;
    assert!(response.get("patch").is_none());

    let mut other = object.clone();
    other["metadata"]["finalizers"] = json!(["example.com/other"]);
    let response = allowed(
        Endpoint::MutateKeys,
        &review("CREATE", user("consumer"), other.clone(), None),
    )
    .await;
    assert_eq!(
        patched(&response, &other)["metadata"]["finalizers"],
        json!(["example.com/other", FINALIZER])
    );
}

#[tokio::test]
async fn approval_writes_are_stamped_with_reviewer_and_time() {
    let old = key("toys", "gold", Some("consumer"));
    let mut new = old.clone();
    new["spec"]["approval"] = json!({"approved": true, "reviewedBy": "forged"});
    let response = allowed(
        Endpoint::MutateKeys,
        &review("UPDATE", user("owner"), new.clone(), Some(old)),
    )
    .await;
    let stamped = patched(&response, &new);
    assert_eq!(
        stamped["spec"]["approval"],
        json!({"approved": true, "reviewedBy": "owner", "reviewedAt": "2026-06-01T12:00:00Z",
               "productUID": "p-1", "planTier": "gold"})
    );
    assert_eq!(
        stamped["spec"]["requestedBy"],
        json!({"userId": "consumer"}),
        "UPDATE leaves the requester alone"
    );

    // Rewriting the same approval is not a new review.
    let response = allowed(
        Endpoint::MutateKeys,
        &review("UPDATE", user("owner"), stamped.clone(), Some(stamped)),
    )
    .await;
    assert!(response.get("patch").is_none());

    // An approval in a CREATE is stamped too.
    let mut object = key("toys", "gold", None);
    object["spec"]["approval"] = json!({"approved": false, "reason": "no"});
    let response = allowed(
        Endpoint::MutateKeys,
        &review("CREATE", user("owner"), object.clone(), None),
    )
    .await;
    let stamped = patched(&response, &object);
    assert_eq!(stamped["spec"]["approval"]["reviewedBy"], "owner");
    assert_eq!(stamped["spec"]["requestedBy"]["userId"], "owner");
}

#[tokio::test]
async fn an_approval_of_a_missing_product_carries_no_product_uid_and_is_refused() {
    let mut old = key("vanished", "gold", Some("consumer"));
    // A revocation kept the stamps of an approval given while the product existed.
    old["spec"]["approval"] = json!({"approved": false, "productUID": "p-1", "planTier": "gold"});
    let mut new = old.clone();
    new["spec"]["approval"]["approved"] = json!(true);
    let response = allowed(
        Endpoint::MutateKeys,
        &review("UPDATE", user("admin"), new.clone(), Some(old.clone())),
    )
    .await;
    let stamped = patched(&response, &new);
    assert!(
        stamped["spec"]["approval"].get("productUID").is_none(),
        "no product, no productUID: {stamped}"
    );
    denied(
        Endpoint::ValidateKeys,
        &review("UPDATE", user("admin"), stamped, Some(old)),
        Reason::ProductNotFound,
        422,
        "an approval binds the product it approves",
    )
    .await;
}

#[tokio::test]
async fn what_the_reviewer_says_they_reviewed_must_still_be_there() {
    let old = key("toys", "gold", Some("consumer"));
    let with = |approval: serde_json::Value| {
        let mut new = old.clone();
        new["spec"]["approval"] = approval;
        new
    };
    // The tier moved from silver to gold after the reviewer read it.
    denied(
        Endpoint::MutateKeys,
        &review(
            "UPDATE",
            user("owner"),
            with(json!({"approved": true, "planTier": "silver"})),
            Some(old.clone()),
        ),
        Reason::ReviewOutdated,
        409,
        "spec.approval.planTier \"silver\" is the tier you reviewed, and the key now asks for \"gold\"",
    )
    .await;
    // The product was re-created after the reviewer read it.
    denied(
        Endpoint::MutateKeys,
        &review(
            "UPDATE",
            user("owner"),
            with(json!({"approved": true, "productUID": "p-0"})),
            Some(old.clone()),
        ),
        Reason::ReviewOutdated,
        409,
        "\"p-0\" is not the uid of the APIProduct the key references now (p-1)",
    )
    .await;
    // What still holds is accepted and stamped as usual.
    let new = with(json!({"approved": true, "planTier": "gold", "productUID": "p-1"}));
    let response = allowed(
        Endpoint::MutateKeys,
        &review("UPDATE", user("owner"), new.clone(), Some(old.clone())),
    )
    .await;
    assert_eq!(
        patched(&response, &new)["spec"]["approval"]["productUID"],
        "p-1"
    );

    // Stamps carried over from the stored approval (a merge patch flipping `approved`) are no
    // statement of the reviewer's: they are replaced.
    let mut rejected = old.clone();
    rejected["spec"]["approval"] =
        json!({"approved": false, "productUID": "p-0", "planTier": "silver"});
    let mut approved = rejected.clone();
    approved["spec"]["approval"]["approved"] = json!(true);
    let response = allowed(
        Endpoint::MutateKeys,
        &review("UPDATE", user("owner"), approved.clone(), Some(rejected)),
    )
    .await;
    let stamped = patched(&response, &approved);
    assert_eq!(stamped["spec"]["approval"]["productUID"], "p-1");
    assert_eq!(stamped["spec"]["approval"]["planTier"], "gold");
}
