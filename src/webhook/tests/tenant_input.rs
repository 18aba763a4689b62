//! Issue 27's admission rules: a key's default expiry under `--max-key-lifetime`, the e-mail's
//! verification mark, and APIKeyRequests written only by the controller (and admins).

use std::time::Duration;

use serde_json::json;

use super::{allowed, cluster, denied, key, limits, patched, request, review, send, user};
use crate::names::{APIKEY_UID_LABEL, EMAIL_VERIFIED_ANNOTATION};
use crate::webhook::review::{Endpoint, Webhook};
use crate::webhook::rules::Reason;

const CONTROLLER: &str = "system:serviceaccount:devportal-system:devportal";

fn warnings(response: &serde_json::Value) -> String {
    response["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(|w| w.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_key_created_without_expiry_gets_the_maximum_lifetime() {
    let object = key("toys", "gold", Some("consumer"));
    let response = allowed(
        Endpoint::MutateKeys,
        &review("CREATE", user("consumer"), object.clone(), None),
    )
    .await;
    // now() is 2026-06-01T12:00:00Z and the lifetime 30 days.
    assert_eq!(
        patched(&response, &object)["spec"]["expiresAt"],
        "2026-07-01T12:00:00Z"
    );
    let said = warnings(&response);
    assert!(
        said.contains("spec.expiresAt was set to 2026-07-01T12:00:00Z") && said.contains("30 days"),
        "{said}"
    );
    // An expiry of its own is kept.
    let mut own = object.clone();
    own["spec"]["expiresAt"] = json!("2026-06-08T00:00:00Z");
    let response = allowed(
        Endpoint::MutateKeys,
        &review("CREATE", user("consumer"), own.clone(), None),
    )
    .await;
    assert_eq!(
        patched(&response, &own)["spec"]["expiresAt"],
        "2026-06-08T00:00:00Z"
    );
    // Without a maximum (`--max-key-lifetime 0s`) nothing is set, and any expiry is accepted.
    let unlimited = Webhook::new(
        cluster(),
        crate::webhook::rules::Limits {
            max_key_lifetime: Duration::ZERO,
            ..limits()
        },
    );
    let (_, response) = send(
        &unlimited,
        Endpoint::MutateKeys,
        &review("CREATE", user("consumer"), object.clone(), None),
    )
    .await;
    assert!(
        patched(&response, &object)["spec"]
            .get("expiresAt")
            .is_none()
    );
    let mut far = object.clone();
    far["spec"]["expiresAt"] = json!("2036-01-01T00:00:00Z");
    let (reply, _) = send(
        &unlimited,
        Endpoint::ValidateKeys,
        &review("CREATE", user("consumer"), far, None),
    )
    .await;
    assert_eq!(reply.outcome.reason, Reason::Allowed);
}

#[tokio::test]
async fn a_requester_may_not_remove_the_expiry() {
    let mut old = key("toys", "gold", Some("consumer"));
    old["spec"]["expiresAt"] = json!("2026-06-20T00:00:00Z");
    let mut new = old.clone();
    new["spec"].as_object_mut().unwrap().remove("expiresAt");
    denied(
        Endpoint::ValidateKeys,
        &review("UPDATE", user("consumer"), new, Some(old.clone())),
        Reason::ExpiresTooLate,
        422,
        "spec.expiresAt may not be removed: keys live at most 30 days",
    )
    .await;
    let mut sooner = old.clone();
    sooner["spec"]["expiresAt"] = json!("2026-06-10T00:00:00Z");
    allowed(
        Endpoint::ValidateKeys,
        &review("UPDATE", user("consumer"), sooner, Some(old)),
    )
    .await;
}

#[tokio::test]
async fn an_email_is_verified_only_when_it_comes_from_the_identity() {
    // Typed by the consumer, who also marks it verified: marked unverified, with a warning.
    let mut typed = key("toys", "gold", Some("consumer"));
    typed["spec"]["requestedBy"]["email"] = json!("owners@shop.example.com");
    typed["metadata"]["annotations"] = json!({EMAIL_VERIFIED_ANNOTATION: "true", "note": "x"});
    let response = allowed(
        Endpoint::MutateKeys,
        &review("CREATE", user("consumer"), typed.clone(), None),
    )
    .await;
    let stamped = patched(&response, &typed);
    assert_eq!(
        stamped["metadata"]["annotations"],
        json!({EMAIL_VERIFIED_ANNOTATION: "false", "note": "x"})
    );
    assert_eq!(
        stamped["spec"]["requestedBy"]["email"],
        "owners@shop.example.com"
    );
    assert!(
        warnings(&response)
            .contains("\"owners@shop.example.com\" is shown to reviewers as unverified"),
        "{}",
        warnings(&response)
    );

    // From the authenticator: verified.
    let mut who = user("consumer");
    who["extra"] = json!({"example.com/email": ["consumer@corp.example"]});
    let bare = key("toys", "gold", Some("consumer"));
    let response = allowed(
        Endpoint::MutateKeys,
        &review("CREATE", who, bare.clone(), None),
    )
    .await;
    let stamped = patched(&response, &bare);
    assert_eq!(
        stamped["metadata"]["annotations"],
        json!({EMAIL_VERIFIED_ANNOTATION: "true"})
    );
    assert_eq!(
        stamped["spec"]["requestedBy"]["email"],
        "consumer@corp.example"
    );

    // No e-mail at all: no mark (a forged one goes).
    let mut none = key("toys", "gold", Some("consumer"));
    none["metadata"]["annotations"] = json!({EMAIL_VERIFIED_ANNOTATION: "true"});
    let response = allowed(
        Endpoint::MutateKeys,
        &review("CREATE", user("consumer"), none.clone(), None),
    )
    .await;
    assert_eq!(
        patched(&response, &none)["metadata"]["annotations"],
        json!({})
    );

    // Later writes cannot change the mark.
    let mut stored = key("toys", "gold", Some("consumer"));
    stored["spec"]["requestedBy"]["email"] = json!("owners@shop.example.com");
    stored["spec"]["expiresAt"] = json!("2026-06-20T00:00:00Z");
    stored["metadata"]["annotations"] = json!({EMAIL_VERIFIED_ANNOTATION: "false"});
    let mut forged = stored.clone();
    forged["metadata"]["annotations"] = json!({EMAIL_VERIFIED_ANNOTATION: "true"});
    let response = allowed(
        Endpoint::MutateKeys,
        &review(
            "UPDATE",
            user("consumer"),
            forged.clone(),
            Some(stored.clone()),
        ),
    )
    .await;
    assert_eq!(
        patched(&response, &forged)["metadata"]["annotations"],
        json!({EMAIL_VERIFIED_ANNOTATION: "false"})
    );
    assert!(warnings(&response).contains("was restored"));
    let mut dropped = stored.clone();
    dropped["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    let response = allowed(
        Endpoint::MutateKeys,
        &review("UPDATE", user("consumer"), dropped.clone(), Some(stored)),
    )
    .await;
    assert_eq!(
        patched(&response, &dropped)["metadata"]["annotations"],
        json!({EMAIL_VERIFIED_ANNOTATION: "false"})
    );
}

fn key_request(name: &str) -> serde_json::Value {
    let mut r = request(name, "toys", "gold");
    r["metadata"]["labels"] = json!({APIKEY_UID_LABEL: "k-1"});
    r
}

#[tokio::test]
async fn only_the_controller_and_admins_write_apikeyrequests() {
    let forged = key_request("forged-00000000");
    for who in ["owner", "consumer"] {
        denied(
            Endpoint::ValidateRequests,
            &review("CREATE", user(who), forged.clone(), None),
            Reason::NotController,
            403,
            &format!("user {who:?} may not create APIKeyRequests: APIKeyRequests mirror APIKeys"),
        )
        .await;
    }
    allowed(
        Endpoint::ValidateRequests,
        &review("CREATE", user(CONTROLLER), forged.clone(), None),
    )
    .await;
    allowed(
        Endpoint::ValidateRequests,
        &review("CREATE", user("admin"), forged.clone(), None),
    )
    .await;

    let stored = key_request("mine-1234abcd");
    let mut rewritten = stored.clone();
    rewritten["spec"]["useCase"] = json!("approved already, just click");
    let mut relabelled = stored.clone();
    relabelled["metadata"]["labels"][APIKEY_UID_LABEL] = json!("other");
    let mut marked = stored.clone();
    marked["metadata"]["annotations"] = json!({EMAIL_VERIFIED_ANNOTATION: "true"});
    for new in [rewritten, relabelled, marked] {
        denied(
            Endpoint::ValidateRequests,
            &review("UPDATE", user("owner"), new.clone(), Some(stored.clone())),
            Reason::NotController,
            403,
            "only devportal's controller",
        )
        .await;
        allowed(
            Endpoint::ValidateRequests,
            &review("UPDATE", user(CONTROLLER), new, Some(stored.clone())),
        )
        .await;
    }
    let mut triaged = stored.clone();
    triaged["metadata"]["labels"]["triage"] = json!("later");
    let (reply, _) = send(
        &super::webhook(),
        Endpoint::ValidateRequests,
        &review("UPDATE", user("owner"), triaged, Some(stored)),
    )
    .await;
    assert_eq!(
        reply.outcome.reason,
        Reason::Unchanged,
        "other metadata is anyone's"
    );
}
