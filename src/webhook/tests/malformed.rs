//! Bad input: bodies that are not JSON, a wrong apiVersion or kind, a missing request or object,
//! an unknown operation, an oversized body, the uid recovered from a broken body; and what passes
//! untouched: DELETE, the status subresource, dry runs, schema errors on the mutating webhook.

use serde_json::{Value, json};

use super::{UID, key, now, review, user, webhook};
use crate::names::GROUP;
use crate::webhook::review::{Endpoint, Reply, recover_uid};
use crate::webhook::rules::Reason;

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
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!(
                "/validate/apikeys admits APIKey.{GROUP} only, got kind \"Pod\""
            ))
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
            .contains(&format!("admits APIProduct.{GROUP} only"))
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
        r#"{{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{{"uid":"{UID}","kind":{{"group":"{GROUP}","#
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
