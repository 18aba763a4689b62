//! Handler-level tests: AdmissionReview JSON as the API server sends it, through
//! [`Webhook::admit`], against an in-memory lookup. One test per rule and per kind of bad input.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::lookup::{Lookup, MemoryLookup, Read};
use super::review::{Endpoint, Reply, Webhook, recover_uid};
use super::rules::{Limits, Reason};
use crate::resources::APIKey;
use crate::resources::APIProduct;
use crate::resources::gateway::HTTPRoute;

const UID: &str = "705ab4f5-6393-11e8-b7cc-42010a800002";

fn now() -> Timestamp {
    "2026-06-01T12:00:00Z".parse().unwrap()
}

fn limits() -> Limits {
    Limits {
        max_keys_per_user_per_product: 2,
        max_key_lifetime: Duration::from_secs(30 * 86_400),
    }
}

fn product(name: &str, published: bool, tiers: &[&str]) -> Value {
    json!({
        "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIProduct",
        "metadata": {"name": name, "namespace": "apps", "uid": "p-1", "generation": 1},
        "spec": {
            "displayName": "Toys", "approvalMode": "manual",
            "publishStatus": if published { "Published" } else { "Draft" },
            "targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "toystore"}
        },
        "status": {"discoveredPlans": tiers.iter().map(|t| json!({"tier": t, "limits": {"daily": 10}})).collect::<Vec<_>>()}
    })
}

fn route(name: &str, exposed: bool) -> HTTPRoute {
    let mut annotations = json!({});
    if exposed {
        annotations = json!({"devportal.kuadrant.io/exposed": "true"});
    }
    serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": "apps", "annotations": annotations},
        "spec": {"parentRefs": [{"name": "external"}]}
    }))
    .unwrap()
}

/// The cluster most tests see: `apps/toys` Published with gold and silver, `apps/draft` a Draft,
/// `apps/bare` without plans, `apps/other` Published; `owner` owns toys, draft and bare, `admin`
/// owns everything.
fn cluster() -> MemoryLookup {
    let p = |v: Value| serde_json::from_value::<APIProduct>(v).unwrap();
    MemoryLookup::default()
        .with_product(p(product("toys", true, &["gold", "silver"])))
        .with_product(p(product("draft", false, &["gold"])))
        .with_product(p(product("bare", true, &[])))
        .with_product(p(product("other", true, &["gold"])))
        .with_route(route("toystore", true))
        .with_route(route("hidden", false))
        .with_approver("owner", "apps", "toys")
        .with_approver("owner", "apps", "draft")
        .with_approver("owner", "apps", "bare")
        .with_admin("admin")
}

fn webhook() -> Webhook<MemoryLookup> {
    Webhook::new(cluster(), limits())
}

fn key(product: &str, tier: &str, requester: Option<&str>) -> Value {
    let mut key = json!({
        "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey",
        "metadata": {"name": "mine", "namespace": "team", "generation": 1},
        "spec": {"apiProductRef": {"name": product, "namespace": "apps"}, "planTier": tier, "useCase": "testing"}
    });
    if let Some(user) = requester {
        key["spec"]["requestedBy"] = json!({"userId": user});
    }
    key
}

fn user(name: &str) -> Value {
    json!({"username": name, "uid": format!("uid-{name}"), "groups": ["system:authenticated"]})
}

fn review(operation: &str, user: Value, object: Value, old: Option<Value>) -> Value {
    let kind = object["kind"].as_str().unwrap_or("APIKey").to_string();
    let resource = if kind == "APIProduct" {
        "apiproducts"
    } else {
        "apikeys"
    };
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": UID,
            "kind": {"group": "devportal.kuadrant.io", "version": "v1alpha1", "kind": kind},
            "resource": {"group": "devportal.kuadrant.io", "version": "v1alpha1", "resource": resource},
            "requestKind": {"group": "devportal.kuadrant.io", "version": "v1alpha1", "kind": kind},
            "requestResource": {"group": "devportal.kuadrant.io", "version": "v1alpha1", "resource": resource},
            "name": object["metadata"]["name"], "namespace": object["metadata"]["namespace"],
            "operation": operation, "userInfo": user,
            "object": if operation == "DELETE" { Value::Null } else { object.clone() },
            "oldObject": old.unwrap_or(Value::Null),
            "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
        }
    })
}

async fn send<C: Lookup>(webhook: &Webhook<C>, endpoint: Endpoint, body: &Value) -> (Reply, Value) {
    let reply = webhook
        .admit(endpoint, &serde_json::to_vec(body).unwrap(), now())
        .await;
    let parsed: Value = serde_json::from_slice(&reply.body).expect("the reply is JSON");
    assert_eq!(parsed["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(parsed["kind"], "AdmissionReview");
    (reply, parsed["response"].clone())
}

/// Sends `body` and asserts the request is allowed; returns the response.
async fn allowed(endpoint: Endpoint, body: &Value) -> Value {
    let (reply, response) = send(&webhook(), endpoint, body).await;
    assert_eq!(reply.http_status, 200);
    assert_eq!(response["uid"], UID);
    assert_eq!(response["allowed"], true, "{response}");
    response
}

/// Sends `body` and asserts a denial with `reason`, `code`, and a message containing `needle`.
async fn denied(
    endpoint: Endpoint,
    body: &Value,
    reason: Reason,
    code: u16,
    needle: &str,
) -> Value {
    let (reply, response) = send(&webhook(), endpoint, body).await;
    assert_eq!(reply.outcome.reason, reason, "{response}");
    assert_eq!(response["allowed"], false);
    assert_eq!(response["uid"], UID);
    assert_eq!(response["status"]["code"], code);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    response
}

/// Decodes and applies a mutating response's patch to `object`.
fn patched(response: &Value, object: &Value) -> Value {
    assert_eq!(response["patchType"], "JSONPatch");
    let bytes: Vec<u8> = serde_json::from_value(response["patch"].clone()).unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
    let mut object = object.clone();
    json_patch::patch(&mut object, &patch).unwrap();
    object
}

// ---- mutating ----------------------------------------------------------------------------------

#[tokio::test]
async fn create_stamps_the_requester_from_user_info() {
    let object = key("toys", "gold", None);
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
    let response = allowed(
        Endpoint::MutateKeys,
        &review("CREATE", user("consumer"), object.clone(), None),
    )
    .await;
    let warnings = response["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .contains("\"someone-else\" was replaced with your username \"consumer\"")
    );
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
    let object = key("toys", "gold", Some("consumer"));
    let response = allowed(
        Endpoint::MutateKeys,
        &review("CREATE", user("consumer"), object.clone(), None),
    )
    .await;
    let stamped = patched(&response, &object);
    assert_eq!(
        stamped["metadata"]["finalizers"],
        json!(["devportal.kuadrant.io/secrets"])
    );
    assert_eq!(
        stamped["spec"], object["spec"],
        "a correct requester is left alone"
    );

    let mut finalized = object.clone();
    finalized["metadata"]["finalizers"] =
        json!(["example.com/other", "devportal.kuadrant.io/secrets"]);
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
        json!(["example.com/other", "devportal.kuadrant.io/secrets"])
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
        json!({"approved": true, "reviewedBy": "owner", "reviewedAt": "2026-06-01T12:00:00Z"})
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

// ---- validating APIKeys -----------------------------------------------------------------------

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

fn approve(mut key: Value, reviewer: &str) -> Value {
    key["spec"]["approval"] =
        json!({"approved": true, "reviewedBy": reviewer, "reviewedAt": "2026-06-01T12:00:00Z"});
    key
}

#[tokio::test]
async fn only_owners_and_admins_approve() {
    let old = key("toys", "gold", Some("consumer"));
    let self_approved = approve(old.clone(), "consumer");
    let body = review("UPDATE", user("consumer"), self_approved, Some(old.clone()));
    denied(
        Endpoint::ValidateKeys,
        &body,
        Reason::NotApprover,
        403,
        "user \"consumer\" may not approve keys for APIProduct apps/toys: needs verb \"approve\" on apiproducts.devportal.kuadrant.io \"toys\" in namespace \"apps\"",
    )
    .await;

    allowed(
        Endpoint::ValidateKeys,
        &review(
            "UPDATE",
            user("owner"),
            approve(old.clone(), "owner"),
            Some(old.clone()),
        ),
    )
    .await;
    allowed(
        Endpoint::ValidateKeys,
        &review(
            "UPDATE",
            user("admin"),
            approve(old.clone(), "admin"),
            Some(old),
        ),
    )
    .await;

    // The owner of toys does not own other.
    let other = key("other", "gold", Some("consumer"));
    let body = review(
        "UPDATE",
        user("owner"),
        approve(other.clone(), "owner"),
        Some(other),
    );
    denied(
        Endpoint::ValidateKeys,
        &body,
        Reason::NotApprover,
        403,
        "may not approve keys for APIProduct apps/other",
    )
    .await;

    // A consumer cannot smuggle an approval into a CREATE either.
    let body = review(
        "CREATE",
        user("consumer"),
        approve(key("toys", "gold", Some("consumer")), "consumer"),
        None,
    );
    denied(
        Endpoint::ValidateKeys,
        &body,
        Reason::NotApprover,
        403,
        "needs verb \"approve\"",
    )
    .await;

    // Removing an approval is a review decision too.
    let approved = approve(key("toys", "gold", Some("consumer")), "owner");
    let body = review(
        "UPDATE",
        user("consumer"),
        key("toys", "gold", Some("consumer")),
        Some(approved),
    );
    denied(
        Endpoint::ValidateKeys,
        &body,
        Reason::NotApprover,
        403,
        "may not approve",
    )
    .await;
}

#[tokio::test]
async fn the_reviewer_recorded_must_be_the_user() {
    let old = key("toys", "gold", Some("consumer"));
    let body = review(
        "UPDATE",
        user("owner"),
        approve(old.clone(), "admin"),
        Some(old),
    );
    denied(
        Endpoint::ValidateKeys,
        &body,
        Reason::ReviewerMismatch,
        403,
        "reviewedBy must be the reviewer's own username \"owner\"",
    )
    .await;
}

#[tokio::test]
async fn requested_by_is_immutable() {
    let old = key("toys", "gold", Some("consumer"));
    let new = key("toys", "gold", Some("consumer2"));
    let body = review("UPDATE", user("admin"), new, Some(old));
    denied(
        Endpoint::ValidateKeys,
        &body,
        Reason::RequestedByImmutable,
        422,
        "spec.requestedBy is immutable",
    )
    .await;
}

#[tokio::test]
async fn only_the_requester_edits_and_only_while_pending() {
    let old = key("toys", "gold", Some("consumer"));
    let mut new = old.clone();
    new["spec"]["planTier"] = json!("silver");
    new["spec"]["useCase"] = json!("more testing");
    allowed(
        Endpoint::ValidateKeys,
        &review("UPDATE", user("consumer"), new.clone(), Some(old.clone())),
    )
    .await;
    allowed(
        Endpoint::ValidateKeys,
        &review("UPDATE", user("owner"), new.clone(), Some(old.clone())),
    )
    .await;
    denied(
        Endpoint::ValidateKeys,
        &review("UPDATE", user("consumer2"), new.clone(), Some(old.clone())),
        Reason::NotRequester,
        403,
        "only the requester \"consumer\" or an owner of APIProduct apps/toys may change spec.planTier, spec.useCase",
    )
    .await;

    // Once approved (in spec or in status) the request is settled.
    let approved = approve(old.clone(), "owner");
    let mut retiered = approved.clone();
    retiered["spec"]["planTier"] = json!("silver");
    denied(
        Endpoint::ValidateKeys,
        &review("UPDATE", user("consumer"), retiered, Some(approved)),
        Reason::NotPending,
        422,
        "spec.planTier may change only while the key is Pending, and this key is approved",
    )
    .await;
    let mut active = old.clone();
    active["status"] = json!({"phase": "Approved"});
    let mut retiered = active.clone();
    retiered["spec"]["planTier"] = json!("silver");
    denied(
        Endpoint::ValidateKeys,
        &review("UPDATE", user("admin"), retiered, Some(active)),
        Reason::NotPending,
        422,
        "this key is Approved",
    )
    .await;

    // A new tier must exist.
    let mut new = old.clone();
    new["spec"]["planTier"] = json!("platinum");
    denied(
        Endpoint::ValidateKeys,
        &review("UPDATE", user("consumer"), new, Some(old)),
        Reason::UnknownTier,
        422,
        "choose one of",
    )
    .await;
}

#[tokio::test]
async fn metadata_only_changes_always_pass() {
    // Even on a settled key whose product is gone, by a user with no stake in it.
    let mut old = approve(key("vanished", "gold", Some("consumer")), "owner");
    old["status"] = json!({"phase": "Failed"});
    let mut new = old.clone();
    new["metadata"]["labels"] = json!({"team": "blue"});
    new["metadata"]["finalizers"] = json!(["devportal.kuadrant.io/secrets"]);
    let response = allowed(
        Endpoint::ValidateKeys,
        &review("UPDATE", user("controller"), new.clone(), Some(old.clone())),
    )
    .await;
    assert!(response.get("patch").is_none());
    let response = allowed(
        Endpoint::MutateKeys,
        &review("UPDATE", user("controller"), new, Some(old)),
    )
    .await;
    assert!(
        response.get("patch").is_none(),
        "the mutating webhook stamps nothing"
    );
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
            .with_key(existing("c", Some("Rejected"))),
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
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("already holds 2 live keys for APIProduct apps/toys, the maximum is 2")
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

// ---- validating APIProducts -------------------------------------------------------------------

fn product_on(route: &str) -> Value {
    let mut p = product("new", true, &[]);
    p["spec"]["targetRef"]["name"] = json!(route);
    p.as_object_mut().unwrap().remove("status");
    p
}

#[tokio::test]
async fn products_target_existing_exposed_routes() {
    allowed(
        Endpoint::ValidateProducts,
        &review("CREATE", user("owner"), product_on("toystore"), None),
    )
    .await;
    denied(
        Endpoint::ValidateProducts,
        &review("CREATE", user("owner"), product_on("ghost"), None),
        Reason::RouteNotFound,
        422,
        "HTTPRoute \"ghost\" not found in namespace \"apps\"",
    )
    .await;
    denied(
        Endpoint::ValidateProducts,
        &review("UPDATE", user("owner"), product_on("hidden"), Some(product_on("toystore"))),
        Reason::RouteNotExposed,
        422,
        "HTTPRoute \"hidden\" in namespace \"apps\" is not exposed to API owners; a platform engineer must annotate it devportal.kuadrant.io/exposed=\"true\"",
    )
    .await;
    // Other spec changes do not re-check the route.
    let old = product_on("ghost");
    let mut new = old.clone();
    new["spec"]["description"] = json!("now with docs");
    allowed(
        Endpoint::ValidateProducts,
        &review("UPDATE", user("owner"), new, Some(old)),
    )
    .await;
}

// ---- bad input ---------------------------------------------------------------------------------

async fn raw(endpoint: Endpoint, body: &[u8]) -> (Reply, Value) {
    let reply = webhook().admit(endpoint, body, now()).await;
    let parsed: Value = serde_json::from_slice(&reply.body).expect("even errors are JSON");
    assert_eq!(parsed["kind"], "AdmissionReview");
    (reply, parsed["response"].clone())
}

#[tokio::test]
async fn malformed_json_gets_a_400_admission_review() {
    for body in [
        &b""[..],
        b"{",
        b"null",
        b"[]",
        b"\xff\xfe",
        b"{\"apiVersion\": 7}",
    ] {
        let (reply, response) = raw(Endpoint::ValidateKeys, body).await;
        assert_eq!(reply.http_status, 400, "{}", String::from_utf8_lossy(body));
        assert_eq!(reply.outcome.reason, Reason::BadRequest);
        assert_eq!(response["allowed"], false);
        assert_eq!(response["status"]["code"], 400);
        assert!(!response["status"]["message"].as_str().unwrap().is_empty());
    }
    // Broken further in, the uid still comes back so the API server can show the message.
    let mut body = serde_json::to_vec(&review(
        "CREATE",
        user("consumer"),
        key("toys", "gold", None),
        None,
    ))
    .unwrap();
    body.truncate(body.len() - 40);
    let (reply, response) = raw(Endpoint::ValidateKeys, &body).await;
    assert_eq!(reply.http_status, 200);
    assert_eq!(response["uid"], UID);
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("not a JSON AdmissionReview")
    );
}

#[tokio::test]
async fn a_wrong_api_version_or_kind_is_refused() {
    let mut body = review("CREATE", user("consumer"), key("toys", "gold", None), None);
    body["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let (reply, response) = raw(Endpoint::MutateKeys, &serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(
        (reply.http_status, reply.outcome.reason),
        (200, Reason::BadRequest)
    );
    assert_eq!(response["uid"], UID);
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("got kind \"AdmissionReview\" of apiVersion \"admission.k8s.io/v1beta1\"")
    );

    let mut body = review("CREATE", user("consumer"), key("toys", "gold", None), None);
    body["kind"] = json!("ConversionReview");
    let (_, response) = raw(Endpoint::MutateKeys, &serde_json::to_vec(&body).unwrap()).await;
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("got kind \"ConversionReview\"")
    );

    // A Pod sent to the APIKey endpoint.
    let mut body = review("CREATE", user("consumer"), key("toys", "gold", None), None);
    body["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "Pod"});
    body["request"]["object"] = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}});
    let (_, response) = raw(Endpoint::ValidateKeys, &serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(response["uid"], UID);
    assert!(
        response["status"]["message"].as_str().unwrap().contains(
            "/validate/apikeys admits APIKey.devportal.kuadrant.io only, got kind \"Pod\""
        )
    );
    // An APIKey sent to the APIProduct endpoint.
    let body = review("CREATE", user("owner"), key("toys", "gold", None), None);
    let (_, response) = raw(
        Endpoint::ValidateProducts,
        &serde_json::to_vec(&body).unwrap(),
    )
    .await;
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("admits APIProduct.devportal.kuadrant.io only")
    );
}

#[tokio::test]
async fn a_missing_object_or_request_is_refused() {
    let mut body = review("CREATE", user("consumer"), key("toys", "gold", None), None);
    body["request"]["object"] = Value::Null;
    let (reply, response) = raw(Endpoint::MutateKeys, &serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(
        (reply.http_status, reply.outcome.reason),
        (200, Reason::BadRequest)
    );
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("a CREATE without an object")
    );

    let old = key("toys", "gold", Some("consumer"));
    let mut body = review("UPDATE", user("consumer"), old.clone(), Some(old));
    body["request"]["oldObject"] = Value::Null;
    let (_, response) = raw(Endpoint::ValidateKeys, &serde_json::to_vec(&body).unwrap()).await;
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("an UPDATE without an oldObject")
    );

    let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"});
    let (reply, response) = raw(Endpoint::ValidateKeys, &serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(reply.http_status, 400);
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("has no request")
    );
}

#[tokio::test]
async fn an_unknown_operation_is_refused_and_delete_passes() {
    let mut body = review("CREATE", user("consumer"), key("toys", "gold", None), None);
    body["request"]["operation"] = json!("PATCH");
    let (reply, response) = raw(Endpoint::ValidateKeys, &serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(
        (reply.http_status, reply.outcome.reason),
        (200, Reason::BadRequest)
    );
    assert_eq!(response["uid"], UID);
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown operation \"PATCH\"")
    );

    let old = key("toys", "gold", Some("consumer"));
    let body = review("DELETE", user("consumer2"), old.clone(), Some(old));
    let (reply, _) = raw(Endpoint::ValidateKeys, &serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(reply.outcome.reason, Reason::NotApplicable);
}

#[tokio::test]
async fn the_status_subresource_is_not_policed() {
    let old = key("nope", "gold", Some("consumer"));
    let mut new = old.clone();
    new["status"] = json!({"phase": "Failed"});
    let mut body = review("UPDATE", user("controller"), new, Some(old));
    body["request"]["subResource"] = json!("status");
    let (reply, response) = raw(Endpoint::ValidateKeys, &serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(reply.outcome.reason, Reason::NotApplicable);
    assert_eq!(response["allowed"], true);
}

#[tokio::test]
async fn dry_run_gets_the_same_answer() {
    for (object, expect_allowed) in [
        (key("toys", "gold", Some("consumer")), true),
        (key("nope", "gold", Some("consumer")), false),
    ] {
        let mut body = review("CREATE", user("consumer"), object, None);
        let (_, wet) = raw(Endpoint::ValidateKeys, &serde_json::to_vec(&body).unwrap()).await;
        body["request"]["dryRun"] = json!(true);
        let (_, dry) = raw(Endpoint::ValidateKeys, &serde_json::to_vec(&body).unwrap()).await;
        assert_eq!(wet, dry);
        assert_eq!(dry["allowed"], expect_allowed);
    }
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_the_uid_when_it_can_be_found() {
    // The API server writes the request's uid first; only a prefix of the body was read.
    let prefix = format!(
        r#"{{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{{"uid":"{UID}","kind":{{"group":"devportal.kuadrant.io","#
    );
    let reply = webhook().too_large(Endpoint::ValidateKeys, prefix.as_bytes(), 400);
    let parsed: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(reply.http_status, 200);
    assert_eq!(parsed["response"]["uid"], UID);
    assert_eq!(parsed["response"]["status"]["code"], 413);
    assert!(
        parsed["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("larger than the webhook's limit of 400 bytes")
    );

    let reply = webhook().too_large(Endpoint::ValidateKeys, &[b' '; 64], 64);
    assert_eq!(reply.http_status, 413);
    assert_eq!(reply.outcome.reason, Reason::TooLarge);
}

#[test]
fn uid_recovery_reads_only_a_plausible_uid() {
    assert_eq!(
        recover_uid(br#"{"kind":"AdmissionReview","request":{"uid" : "abc-1","kind""#).as_deref(),
        Some("abc-1")
    );
    assert_eq!(recover_uid(br#"{"uid":"top-level","request":{}"#), None);
    assert_eq!(recover_uid(br#"{"request":{"uid":42}}"#), None);
    assert_eq!(recover_uid(br#"{"request":{"uid":"unterminated"#), None);
}

/// A lookup whose API server is unreachable.
struct Unreachable;

impl Lookup for Unreachable {
    async fn product(&self, _: &str, _: &str, _: Read) -> crate::Result<Option<Arc<APIProduct>>> {
        Err(crate::Error::Cache("connection refused".into()))
    }
    async fn route(&self, _: &str, _: &str, _: Read) -> crate::Result<Option<Arc<HTTPRoute>>> {
        Err(crate::Error::Cache("connection refused".into()))
    }
    fn live_keys(&self, _: &str, _: &str, _: &str) -> usize {
        0
    }
    async fn may_approve(&self, _: &UserInfo, _: &str, _: &str) -> crate::Result<bool> {
        Err(crate::Error::Cache("connection refused".into()))
    }
}

#[tokio::test]
async fn a_failed_lookup_denies_with_a_server_error() {
    let webhook = Webhook::new(Unreachable, limits());
    let body = review(
        "CREATE",
        user("consumer"),
        key("toys", "gold", Some("consumer")),
        None,
    );
    let (reply, response) = send(&webhook, Endpoint::ValidateKeys, &body).await;
    assert_eq!(reply.outcome.reason, Reason::LookupFailed);
    assert_eq!(response["status"]["code"], 500);
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("could not look up APIProduct apps/toys")
    );
    let old = key("toys", "gold", Some("consumer"));
    let body = review(
        "UPDATE",
        user("owner"),
        approve(old.clone(), "owner"),
        Some(old),
    );
    let (_, response) = send(&webhook, Endpoint::ValidateKeys, &body).await;
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("SubjectAccessReview")
    );
    let body = review("CREATE", user("owner"), product_on("toystore"), None);
    let (reply, _) = send(&webhook, Endpoint::ValidateProducts, &body).await;
    assert_eq!(reply.outcome.reason, Reason::LookupFailed);
}

#[tokio::test]
async fn schema_errors_are_left_to_the_api_server_by_the_mutating_webhook() {
    // Mutating admission runs before schema validation: an object missing a required field is
    // let through untouched (the API server then reports the field), while the validating webhook,
    // which runs after schema validation, refuses anything it cannot read.
    let mut object = key("toys", "gold", None);
    object["spec"].as_object_mut().unwrap().remove("planTier");
    let body = serde_json::to_vec(&review("CREATE", user("consumer"), object, None)).unwrap();
    let (reply, response) = raw(Endpoint::MutateKeys, &body).await;
    assert_eq!(reply.outcome.reason, Reason::NotApplicable);
    assert_eq!(response["allowed"], true);
    assert_eq!(response["uid"], UID);
    assert!(response.get("patch").is_none());
    let (reply, response) = raw(Endpoint::ValidateKeys, &body).await;
    assert_eq!(reply.outcome.reason, Reason::BadRequest);
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("missing field `planTier`")
    );
}
