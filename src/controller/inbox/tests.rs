use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde_json::json;

use super::approval_status;
use super::desired::{request_spec, request_status};
use super::standing::carries;
use super::*;
use crate::names::approval_reason::{APPLIED, SUPERSEDED};
use crate::names::{
    REVIEW_WITHDRAWN_ANNOTATION, REVIEWED_PRODUCT_UID_ANNOTATION, REVIEWED_TIER_ANNOTATION,
};
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

fn at(time: &str) -> MicroTime {
    MicroTime(time.parse::<Timestamp>().unwrap())
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
fn a_review_is_not_written_onto_a_key_that_has_expired() {
    let key = key("mine", "uid-1");
    let approval = approval("a", true, "2026-01-01T00:00:05Z", "gold", "p1");
    let at: Timestamp = "2026-01-01T00:00:03Z".parse().unwrap();
    let now: Timestamp = "2026-01-01T00:00:06Z".parse().unwrap();
    let decision = unless_expired(decide(&key, &approval, Some("p1")), Some(at), now);
    assert_eq!(decision, Decision::KeyExpired(at));
    let valid = standing(&approval, &approval, &decision);
    assert!(!valid.status);
    assert_eq!(valid.reason, crate::names::approval_reason::KEY_EXPIRED);
    assert!(
        valid.message.contains("expired at 2026-01-01T00:00:03Z"),
        "{}",
        valid.message
    );
    let later: Timestamp = "2026-01-01T00:00:09Z".parse().unwrap();
    assert!(matches!(
        unless_expired(decide(&key, &approval, Some("p1")), Some(later), now),
        Decision::Write(_)
    ));
    assert!(matches!(
        unless_expired(decide(&key, &approval, Some("p1")), None, now),
        Decision::Write(_)
    ));
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
    assert_eq!(decide(&key, &approval, Some("p1")), Decision::Carried);
    // A later review written on the key directly wins over the older approval.
    key.spec.approval.as_mut().unwrap().reviewed_at = Some(at("2026-01-01T00:01:00Z"));
    key.spec.approval.as_mut().unwrap().approved = false;
    assert!(matches!(
        decide(&key, &approval, Some("p1")),
        Decision::Superseded(_)
    ));
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

/// A key carrying `approved` written on the key itself at `reviewed_at`.
fn reviewed_key(approved: bool, reviewed_at: &str) -> APIKey {
    let mut key = key("mine", "uid-1");
    key.spec.approval = Some(Approval {
        approved,
        reason: None,
        reviewed_by: Some("owner".into()),
        reviewed_at: Some(at(reviewed_at)),
        product_uid: Some("p1".into()),
        plan_tier: Some("gold".into()),
    });
    key
}

#[test]
fn a_denial_in_the_same_second_as_the_approval_is_applied() {
    // Approved on the key, denied by an APIKeyApproval 300 ms later (the same second).
    let key = reviewed_key(true, "2026-01-01T00:00:05.100000Z");
    let denial = approval("a", false, "2026-01-01T00:00:05.400000Z", "gold", "p1");
    let Decision::Write(review) = decide(&key, &denial, Some("p1")) else {
        panic!("the later denial is written");
    };
    assert!(!review.approved);
    // Stamped by an earlier release, both in whole seconds: the denial wins the tie.
    let key = reviewed_key(true, "2026-01-01T00:00:05Z");
    let denial = approval("a", false, "2026-01-01T00:00:05Z", "gold", "p1");
    assert!(matches!(
        decide(&key, &denial, Some("p1")),
        Decision::Write(_)
    ));
    // ... and an approval of the same second does not undo a denial.
    let key = reviewed_key(false, "2026-01-01T00:00:05Z");
    let approving = approval("a", true, "2026-01-01T00:00:05Z", "gold", "p1");
    assert!(matches!(
        decide(&key, &approving, Some("p1")),
        Decision::Superseded(_)
    ));
}

#[test]
fn between_approvals_a_denial_wins_a_tie_whatever_the_names() {
    let approve = approval("b-approve", true, "2026-01-01T00:00:05Z", "gold", "p1");
    let deny = approval("a-deny", false, "2026-01-01T00:00:05Z", "gold", "p1");
    assert_eq!(latest([&approve, &deny]).unwrap().name_any(), "a-deny");
    let later = approval("c", true, "2026-01-01T00:00:05.000001Z", "gold", "p1");
    assert_eq!(latest([&approve, &deny, &later]).unwrap().name_any(), "c");
}

#[test]
fn clearing_the_keys_review_does_not_resurrect_an_older_approval() {
    // Approved by an APIKeyApproval, revoked on the key, then the key's review cleared.
    let approved = approval("a", true, "2026-01-01T00:00:05.100000Z", "gold", "p1");
    let mut key = key("mine", "uid-1");
    key.annotations_mut().insert(
        REVIEW_WITHDRAWN_ANNOTATION.into(),
        "2026-01-01T00:00:05.300000Z".into(),
    );
    let decision = decide(&key, &approved, Some("p1"));
    assert!(
        matches!(&decision, Decision::Superseded(why) if why.contains("withdrawn")),
        "{decision:?}"
    );
    let valid = standing(&approved, &approved, &decision);
    assert!(!valid.status);
    assert_eq!(valid.reason, SUPERSEDED);
    // A review after the withdrawal counts.
    let again = approval("b", true, "2026-01-01T00:00:06Z", "gold", "p1");
    assert!(matches!(
        decide(&key, &again, Some("p1")),
        Decision::Write(_)
    ));
}

#[test]
fn every_approval_of_a_request_says_whether_it_counts() {
    let approve = approval("a", true, "2026-01-01T00:00:05.1Z", "gold", "p1");
    let deny = approval("b", false, "2026-01-01T00:00:05.2Z", "gold", "p1");
    let key = key("mine", "uid-1");
    let chosen = latest([&approve, &deny]).unwrap();
    let decision = decide(&key, chosen, Some("p1"));
    let counts = standing(&deny, chosen, &decision);
    assert!(counts.status);
    assert_eq!(counts.reason, APPLIED);
    assert!(counts.message.contains("denied"), "{}", counts.message);
    let older = standing(&approve, chosen, &decision);
    assert!(!older.status);
    assert_eq!(older.reason, SUPERSEDED);
    assert!(
        older.message.contains("APIKeyApproval b"),
        "{}",
        older.message
    );
}

#[test]
fn an_approval_status_is_written_once_per_change() {
    let mut deny = approval("b", false, "2026-01-01T00:00:05.2Z", "gold", "p1");
    deny.metadata.generation = Some(2);
    let now = "2026-01-01T00:01:00Z".parse().unwrap();
    let valid = standing(&deny, &deny, &Decision::Carried);
    let status =
        approval_status::desired(&deny, valid.clone(), now).expect("written the first time");
    assert_eq!(status.observed_generation, Some(2));
    assert_eq!(status.conditions[0].type_, "Valid");
    assert_eq!(status.conditions[0].observed_generation, Some(2));
    deny.status = Some(status);
    assert_eq!(approval_status::desired(&deny, valid.clone(), now), None);
    // A new review (an update of the approval) is a new generation: written again.
    deny.metadata.generation = Some(3);
    assert!(approval_status::desired(&deny, valid, now).is_some());
}
