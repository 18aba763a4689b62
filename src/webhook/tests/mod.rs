//! Handler-level tests: AdmissionReview JSON as the API server sends it, through
//! [`Webhook::admit`], against an in-memory cluster. One test per rule and per kind of bad input,
//! one file per topic; this module holds the shared fixtures (the cluster, the objects, the review
//! builder and the allowed/denied assertions).

mod apikey_create;
mod apikey_update;
mod apiproduct;
mod approval;
mod automatic;
mod delegation;
mod key_limit;
mod lookup_failure;
mod malformed;
mod mutate;
mod policies;
mod re_review;
mod rotation;
mod tenant_input;

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::lookup::{Lookup, MemoryLookup};
use super::review::{Endpoint, Reply, Webhook};
use super::rules::{Limits, Reason};
use crate::names::{API_VERSION, EXPOSED_ANNOTATION, GATEWAY_GROUP, GROUP, VERSION};
use crate::resources::APIProduct;
use crate::resources::gateway::HTTPRoute;

const UID: &str = "705ab4f5-6393-11e8-b7cc-42010a800002";

fn now() -> Timestamp {
    "2026-06-01T12:00:00Z".parse().unwrap()
}

fn limits() -> Limits {
    Limits {
        max_keys_per_user_per_product: 2,
        expired_key_grace: Duration::from_secs(86_400),
        max_key_lifetime: Duration::from_secs(30 * 86_400),
        controller_username: "system:serviceaccount:devportal-system:devportal".into(),
    }
}

fn product(name: &str, published: bool, tiers: &[&str]) -> Value {
    json!({
        "apiVersion": API_VERSION, "kind": "APIProduct",
        "metadata": {"name": name, "namespace": "apps", "uid": "p-1", "generation": 1},
        "spec": {
            "displayName": "Toys", "approvalMode": "manual",
            "publishStatus": if published { "Published" } else { "Draft" },
            "targetRef": {"group": GATEWAY_GROUP, "kind": "HTTPRoute", "name": "toystore"}
        },
        "status": {"discoveredPlans": tiers.iter().map(|t| json!({"tier": t, "limits": {"daily": 10}})).collect::<Vec<_>>()}
    })
}

fn route(name: &str, exposed: bool) -> HTTPRoute {
    let mut annotations = json!({});
    if exposed {
        annotations = json!({EXPOSED_ANNOTATION: "true"});
    }
    serde_json::from_value(json!({
        "apiVersion": format!("{GATEWAY_GROUP}/v1"), "kind": "HTTPRoute",
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
        .with_request(serde_json::from_value(request("mine-1234abcd", "toys", "gold")).unwrap())
}

/// An APIKeyRequest in `apps` for `product` at `tier`, as the controller writes it.
fn request(name: &str, product: &str, tier: &str) -> Value {
    json!({
        "apiVersion": API_VERSION, "kind": "APIKeyRequest",
        "metadata": {"name": name, "namespace": "apps", "uid": "r-1"},
        "spec": {"apiProductRef": {"name": product}, "planTier": tier,
                 "requestedBy": {"userId": "consumer"},
                 "apiKeyRef": {"name": "mine", "namespace": "team"}}
    })
}

fn webhook() -> Webhook<MemoryLookup> {
    Webhook::new(cluster(), limits())
}

fn key(product: &str, tier: &str, requester: Option<&str>) -> Value {
    let mut key = json!({
        "apiVersion": API_VERSION, "kind": "APIKey",
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
    let resource = match kind.as_str() {
        "APIProduct" => "apiproducts",
        "APIKeyApproval" => "apikeyapprovals",
        _ => "apikeys",
    };
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": UID,
            "kind": {"group": GROUP, "version": VERSION, "kind": kind},
            "resource": {"group": GROUP, "version": VERSION, "resource": resource},
            "requestKind": {"group": GROUP, "version": VERSION, "kind": kind},
            "requestResource": {"group": GROUP, "version": VERSION, "resource": resource},
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

/// `key` with an approval by `reviewer`, stamped as the mutating webhook would.
fn approve(mut key: Value, reviewer: &str) -> Value {
    key["spec"]["approval"] = json!({
        "approved": true, "reviewedBy": reviewer, "reviewedAt": "2026-06-01T12:00:00Z",
        "productUID": "p-1", "planTier": key["spec"]["planTier"]
    });
    key
}

/// A new product `apps/new` targeting the HTTPRoute `route`.
fn product_on(route: &str) -> Value {
    let mut p = product("new", true, &[]);
    p["spec"]["targetRef"]["name"] = json!(route);
    p.as_object_mut().unwrap().remove("status");
    p
}
