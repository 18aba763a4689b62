//! The inbox's pure parts: phases, reviews, the table.

use super::*;
use serde_json::json;

fn conditions(value: serde_json::Value) -> Vec<Condition> {
    serde_json::from_value(value).unwrap()
}

fn condition(type_: &str, status: &str) -> serde_json::Value {
    json!({"type": type_, "status": status, "reason": type_, "message": "",
           "lastTransitionTime": "2026-01-01T00:00:00Z"})
}

#[test]
fn the_phase_is_derived_like_the_backstage_plugin_does() {
    assert_eq!(phase(&[]), "Pending");
    let approved = conditions(json!([
        condition("Approved", "True"),
        condition("Denied", "False")
    ]));
    assert_eq!(phase(&approved), "Approved");
    let denied = conditions(json!([
        condition("Approved", "False"),
        condition("Denied", "True")
    ]));
    assert_eq!(phase(&denied), "Denied");
    let expired = conditions(json!([
        condition("Expired", "True"),
        condition("Approved", "False")
    ]));
    assert_eq!(phase(&expired), "Pending", "neither approved nor denied");
}

fn request_in(phase: &str, approved: Option<bool>) -> APIKeyRequest {
    serde_json::from_value(json!({
        "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKeyRequest",
        "metadata": {"name": "toys-x1", "namespace": "apps"},
        "spec": {"apiProductRef": {"name": "toys"}, "planTier": "gold",
                 "apiKeyRef": {"name": "k", "namespace": "team"}},
        "status": {"phase": phase, "approved": approved, "reviewedBy": "owner",
                   "reviewedAt": "2026-06-01T00:00:00.000001Z", "approvalName": "toys-x1-abcde",
                   "conditions": [condition("Pending", "True")]}
    }))
    .unwrap()
}

#[test]
fn the_phase_is_the_keys_and_a_decision_already_made_is_not_made_again() {
    assert_eq!(phase_of(&request_in("Expired", None)), "Expired");
    assert_eq!(phase_of(&request_in("Failed", Some(true))), "Failed");
    assert_eq!(
        phase_of(&request_in("", None)),
        "Pending",
        "from the conditions"
    );
    let approved = request_in("Approved", Some(true));
    let line = unchanged(&approved, true).expect("approving twice is a no-op");
    assert_eq!(
        line,
        "apikeyrequest/toys-x1 is already approved by owner at 2026-06-01T00:00:00.000001Z \
         (apikeyapproval/toys-x1-abcde) and its key is Approved: nothing to do, no \
         APIKeyApproval created\n"
    );
    assert_eq!(unchanged(&approved, false), None, "a denial changes it");
    assert!(unchanged(&request_in("Denied", Some(false)), false).is_some());
    assert_eq!(unchanged(&request_in("Denied", Some(false)), true), None);
    assert_eq!(unchanged(&request_in("Pending", None), true), None);
    assert!(unchanged(&request_in("Failed", Some(true)), true).is_some());
    assert_eq!(unchanged(&request_in("Failed", Some(true)), false), None);
    assert_eq!(
        unchanged(&request_in("Expired", None), true),
        None,
        "the webhook refuses it"
    );
}

#[test]
fn a_review_names_the_request_and_leaves_the_stamps_to_the_webhook() {
    let deny = Review::deny(DenyArgs {
        request: "toys-x1".into(),
        reason: "use the sandbox".into(),
    });
    let approval = deny.approval();
    assert_eq!(approval.metadata.name, None);
    assert_eq!(approval.metadata.generate_name.as_deref(), Some("toys-x1-"));
    assert_eq!(approval.spec.api_key_request_ref.name, "toys-x1");
    assert!(!approval.spec.approved);
    assert_eq!(approval.spec.reason.as_deref(), Some("use the sandbox"));
    assert_eq!(approval.spec.reviewed_by, None);
    assert_eq!(approval.spec.reviewed_at, None);
    let long = Review::approve(ApproveArgs {
        request: "r".repeat(253),
        reason: None,
    });
    assert_eq!(long.approval().metadata.generate_name.unwrap().len(), 201);
}

#[test]
fn long_use_cases_are_cut_in_the_table() {
    assert_eq!(truncated("short", 40), "short");
    assert_eq!(
        truncated(&"x".repeat(50), 10),
        format!("{}…", "x".repeat(9))
    );
}

#[test]
fn an_email_is_shown_unverified_unless_devportal_marked_it_verified() {
    let request = |email: Option<&str>, verified: Option<&str>| {
        let mut r: APIKeyRequest = serde_json::from_value(serde_json::json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKeyRequest",
            "metadata": {"name": "toys-x1", "namespace": "apps", "creationTimestamp": "2026-06-01T00:00:00Z"},
            "spec": {"apiProductRef": {"name": "toys"}, "planTier": "gold",
                     "requestedBy": {"userId": "consumer", "email": email},
                     "apiKeyRef": {"name": "k", "namespace": "team"}}
        }))
        .unwrap();
        if let Some(v) = verified {
            r.annotations_mut()
                .insert(EMAIL_VERIFIED_ANNOTATION.into(), v.into());
        }
        r
    };
    let forged = request(Some("owners@shop.example"), Some("false"));
    assert_eq!(email(&forged), "owners@shop.example (unverified)");
    let old = request(Some("owners@shop.example"), None);
    assert_eq!(
        email(&old),
        "owners@shop.example (unverified)",
        "unmarked: unverified"
    );
    let real = request(Some("alice@example.org"), Some("true"));
    assert_eq!(email(&real), "alice@example.org");
    assert_eq!(email(&request(None, None)), "");
    let now: Timestamp = "2026-06-01T00:05:00Z".parse().unwrap();
    let table = table(&[forged], false, now).render("");
    let header = table.lines().next().unwrap();
    assert!(header.contains("REQUESTER   EMAIL"), "{table}");
    assert!(
        table.contains("owners@shop.example (unverified)"),
        "{table}"
    );
}
