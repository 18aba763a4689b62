use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::desired::{carries, request_spec, request_status};
use super::*;
use crate::names::{REVIEWED_PRODUCT_UID_ANNOTATION, REVIEWED_TIER_ANNOTATION};
use crate::resources::{APIKeyApproval, APIKeyPhase, Approval};

fn key(name: &str, uid: &str) -> APIKey {
    serde_json::from_value(json!({
        "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey",
        "metadata": {"name": name, "namespace": "team-a", "uid": uid},
        "spec": {"apiProductRef": {"name": "toys", "namespace": "apps"}, "planTier": "gold",
                 "useCase": "testing", "requestedBy": {"userId": "alice"}}
    }))
    .unwrap()
}

fn at(time: &str) -> Time {
    Time(time.parse::<Timestamp>().unwrap())
}

fn approval(
    name: &str,
    approved: bool,
    reviewed_at: &str,
    tier: &str,
    uid: &str,
) -> APIKeyApproval {
    serde_json::from_value(json!({
        "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKeyApproval",
        "metadata": {"name": name, "namespace": "apps", "uid": format!("uid-{name}"),
                     "annotations": {REVIEWED_TIER_ANNOTATION: tier,
                                     REVIEWED_PRODUCT_UID_ANNOTATION: uid}},
        "spec": {"apiKeyRequestRef": {"name": "r"}, "approved": approved,
                 "reviewedBy": "owner", "reviewedAt": reviewed_at,
                 "reason": "ok", "message": "enjoy"}
    }))
    .unwrap()
}

#[test]
fn request_names_tell_keys_apart_and_fit() {
    let a = request_name(&key("mine", "uid-1"));
    let b = request_name(&key("mine", "uid-2"));
    assert!(
        a.starts_with("mine-") && a.len() == "mine-".len() + 8,
        "{a}"
    );
    assert_ne!(a, b, "a re-created namesake gets another request");
    assert_eq!(a, request_name(&key("mine", "uid-1")), "stable");
    let long = request_name(&key(&"k".repeat(253), "uid-1"));
    assert_eq!(long.len(), 253);
    let dotted = request_name(&key(&format!("{}.x", "k".repeat(243)), "uid-1"));
    assert!(!dotted.contains(".-"), "{dotted}");
}

#[test]
fn the_request_mirrors_the_key_with_upstream_field_names() {
    let spec = serde_json::to_value(request_spec(&key("mine", "uid-1"))).unwrap();
    assert_eq!(
        spec,
        json!({"apiProductRef": {"name": "toys"}, "planTier": "gold", "useCase": "testing",
               "requestedBy": {"userId": "alice"},
               "apiKeyRef": {"name": "mine", "namespace": "team-a"}})
    );
}

#[test]
fn status_says_denied_and_holds_one_condition() {
    let mut key = key("mine", "uid-1");
    key.spec.approval = Some(Approval {
        approved: false,
        reason: Some("no".into()),
        reviewed_by: Some("owner".into()),
        reviewed_at: Some(at("2026-01-01T00:00:00Z")),
        product_uid: None,
        plan_tier: None,
    });
    let now = "2026-01-02T00:00:00Z".parse().unwrap();
    let status = request_status(&key, APIKeyPhase::Denied, "denied", None, &[], now);
    assert_eq!(status.phase.as_deref(), Some("Denied"));
    let holding: Vec<_> = status
        .conditions
        .iter()
        .filter(|c| c.status == "True")
        .map(|c| c.type_.as_str())
        .collect();
    assert_eq!(holding, ["Denied"]);
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Approved" && c.status == "False")
    );
    assert_eq!(status.approved, Some(false));
    assert_eq!(status.reviewed_by.as_deref(), Some("owner"));
    assert_eq!(status.reason.as_deref(), Some("no"));
    let pending = request_status(&key, APIKeyPhase::Pending, "", None, &[], now);
    assert_eq!(pending.phase.as_deref(), Some("Pending"));
}

#[test]
fn the_latest_approval_is_chosen_by_review_time() {
    let early = approval("a", true, "2026-01-01T00:00:00Z", "gold", "p1");
    let late = approval("b", false, "2026-01-01T00:00:05Z", "gold", "p1");
    let mut unstamped = approval("c", true, "2026-01-01T00:00:09Z", "gold", "p1");
    unstamped.spec.reviewed_at = None;
    let chosen = latest([&early, &late, &unstamped]).unwrap();
    assert_eq!(chosen.metadata.name.as_deref(), Some("b"));
    assert!(latest([&unstamped]).is_none());
}

#[test]
fn an_approval_is_written_once_and_only_if_later_than_the_keys_review() {
    let mut key = key("mine", "uid-1");
    let approval = approval("a", true, "2026-01-01T00:00:05Z", "gold", "p1");
    let Decision::Write(review) = decide(&key, &approval, Some("p1")) else {
        panic!("an unreviewed key takes the approval");
    };
    assert_eq!(review.reviewed_by.as_deref(), Some("owner"));
    assert_eq!(review.reason.as_deref(), Some("ok: enjoy"));
    assert_eq!(review.plan_tier.as_deref(), Some("gold"));
    assert_eq!(review.product_uid.as_deref(), Some("p1"));
    key.spec.approval = Some(review);
    assert!(carries(&key, &approval));
    assert_eq!(decide(&key, &approval, Some("p1")), Decision::Nothing);
    // A later review written on the key directly wins over the older approval.
    key.spec.approval.as_mut().unwrap().reviewed_at = Some(at("2026-01-01T00:01:00Z"));
    key.spec.approval.as_mut().unwrap().approved = false;
    assert_eq!(decide(&key, &approval, Some("p1")), Decision::Nothing);
    assert!(!carries(&key, &approval));
}

#[test]
fn an_approval_of_another_tier_or_product_is_not_applied() {
    let key = key("mine", "uid-1");
    let silver = approval("a", true, "2026-01-01T00:00:05Z", "silver", "p1");
    assert!(matches!(
        decide(&key, &silver, Some("p1")),
        Decision::Outdated(_)
    ));
    let earlier_product = approval("b", true, "2026-01-01T00:00:05Z", "gold", "p0");
    assert!(matches!(
        decide(&key, &earlier_product, Some("p1")),
        Decision::Outdated(_)
    ));
}

#[test]
fn a_long_message_is_cut_to_what_the_key_holds() {
    let key = key("mine", "uid-1");
    let mut long = approval("a", true, "2026-01-01T00:00:05Z", "gold", "p1");
    long.spec.message = Some("é".repeat(4000));
    let Decision::Write(review) = decide(&key, &long, Some("p1")) else {
        panic!("written");
    };
    assert_eq!(review.reason.unwrap().chars().count(), 1024);
}

#[test]
fn the_status_digest_ignores_only_timestamps() {
    let key = key("k", "u-1");
    let first = at("2026-01-01T00:00:00Z").0;
    let later = at("2026-01-01T00:05:00Z").0;
    let approved = request_status(&key, APIKeyPhase::Approved, "ok", None, &[], first);
    let again = request_status(&key, APIKeyPhase::Approved, "ok", None, &[], later);
    assert_ne!(approved, again, "the transition times differ");
    assert_eq!(
        crate::resources::cached_request::status_digest(&approved),
        crate::resources::cached_request::status_digest(&again)
    );
    let denied = request_status(&key, APIKeyPhase::Denied, "no", None, &[], first);
    assert_ne!(
        crate::resources::cached_request::status_digest(&approved),
        crate::resources::cached_request::status_digest(&denied)
    );
}
