//! The phase rules, on fixed keys, products and discoveries.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::discovery::Resolution;
use crate::resources::ApprovalMode;
use crate::resources::gateway::{HTTPRoute, HTTPRouteSpec};
use crate::resources::kuadrant::ApiKeyAuth;
use crate::resources::kuadrant::{
    AuthPolicy, AuthPolicySpec, AuthRules, AuthenticationRule, Plan, PlanPolicy, PlanPolicySpec,
    PolicyTargetRef,
};
use crate::resources::{
    APIKeySpec, APIProductSpec, Approval, HTTPRouteRef, Limits, PublishStatus, RequestedBy,
};

fn now() -> Timestamp {
    "2026-06-01T00:00:00Z".parse().unwrap()
}

fn target() -> PolicyTargetRef {
    PolicyTargetRef {
        group: "gateway.networking.k8s.io".into(),
        kind: "HTTPRoute".into(),
        name: "r".into(),
        section_name: None,
    }
}

fn product(mode: ApprovalMode) -> APIProduct {
    let mut p = APIProduct::new(
        "toys",
        APIProductSpec {
            display_name: "Toys".into(),
            description: None,
            version: None,
            tags: vec![],
            approval_mode: mode,
            publish_status: PublishStatus::Published,
            target_ref: HTTPRouteRef::route("r"),
            documentation: None,
            contact: None,
        },
    );
    p.metadata.namespace = Some("apps".into());
    p.metadata.uid = Some("p-1".into());
    p
}

fn resolution(tiers: &[&str], api_key: bool) -> Resolution {
    let mut route = HTTPRoute::new(
        "r",
        HTTPRouteSpec {
            parent_refs: vec![],
            hostnames: vec!["toys.example.com".into()],
        },
    );
    route.metadata.namespace = Some("apps".into());
    route.metadata.annotations = Some(
        [(
            crate::names::EXPOSED_ANNOTATION.to_string(),
            "true".to_string(),
        )]
        .into(),
    );
    route.status = serde_json::from_value(serde_json::json!({
        "parents": [{
            "parentRef": {"name": "gw"},
            "conditions": [{"type": "Accepted", "status": "True"}]
        }]
    }))
    .unwrap();
    let plans = PlanPolicy::new(
        "plans",
        PlanPolicySpec {
            target_ref: target(),
            plans: tiers
                .iter()
                .map(|t| Plan {
                    tier: (*t).into(),
                    predicate: None,
                    limits: Limits {
                        daily: Some(10),
                        ..Limits::default()
                    },
                })
                .collect(),
        },
    );
    let rule = AuthenticationRule {
        api_key: api_key.then(|| ApiKeyAuth {
            selector: LabelSelector::default(),
            all_namespaces: false,
        }),
        ..AuthenticationRule::default()
    };
    let mut auth = AuthPolicy::new(
        "auth",
        AuthPolicySpec {
            target_ref: target(),
            rules: Some(AuthRules {
                authentication: [("keys".to_string(), rule)].into(),
                ..AuthRules::default()
            }),
            defaults: None,
            overrides: None,
        },
    );
    auth.metadata.namespace = Some("apps".into());
    Resolution {
        route: Some(Arc::new(route)),
        plan_policy: Some(Arc::new(plans)),
        auth_policy: Some(Arc::new(auth)),
        watched: vec![],
    }
}

fn key() -> APIKey {
    let mut spec = APIKeySpec::new("toys", "gold");
    spec.api_product_ref.namespace = Some("apps".into());
    spec.requested_by = Some(RequestedBy {
        user_id: "consumer".into(),
        email: None,
    });
    let mut k = APIKey::new("k", spec);
    k.metadata.namespace = Some("team".into());
    k
}

fn approval(approved: bool) -> Option<Approval> {
    Some(Approval {
        approved,
        reason: Some("because".into()),
        reviewed_by: Some("owner".into()),
        reviewed_at: None,
        product_uid: None,
        plan_tier: None,
    })
}

fn phase(
    key: &APIKey,
    product: Option<&APIProduct>,
    resolution: Option<&Resolution>,
) -> (APIKeyPhase, &'static str) {
    let d = evaluate(key, product, resolution, now());
    (d.phase, d.reason)
}

#[test]
fn manual_products_wait_for_approval_and_automatic_ones_approve() {
    let r = resolution(&["gold"], true);
    assert_eq!(
        phase(&key(), Some(&product(ApprovalMode::Manual)), Some(&r)),
        (APIKeyPhase::Pending, "AwaitingApproval")
    );
    assert_eq!(
        phase(&key(), Some(&product(ApprovalMode::Automatic)), Some(&r)),
        (APIKeyPhase::Approved, "AutoApproved")
    );
    let mut approved = key();
    approved.spec.approval = approval(true);
    let d = evaluate(
        &approved,
        Some(&product(ApprovalMode::Manual)),
        Some(&r),
        now(),
    );
    assert_eq!(d.phase, APIKeyPhase::Approved);
    assert_eq!(d.message, "approved by owner");
    assert_eq!(d.plan.unwrap().limits.daily, Some(10));
    assert_eq!(d.hostname.as_deref(), Some("toys.example.com"));
    assert_eq!(d.auth.unwrap().2, "apps", "the AuthPolicy's namespace");
}

#[test]
fn failed_wins_over_every_other_phase() {
    let mut rejected = key();
    rejected.spec.approval = approval(false);
    let r = resolution(&["gold"], true);
    assert_eq!(
        phase(&rejected, None, None),
        (APIKeyPhase::Failed, "ProductNotFound")
    );
    let mut deleting = product(ApprovalMode::Automatic);
    deleting.metadata.deletion_timestamp = Some(Time(now()));
    assert_eq!(
        phase(&rejected, Some(&deleting), Some(&r)),
        (APIKeyPhase::Failed, "ProductDeleted")
    );
    let silver_only = resolution(&["silver", "bronze"], true);
    let d = evaluate(
        &rejected,
        Some(&product(ApprovalMode::Automatic)),
        Some(&silver_only),
        now(),
    );
    assert_eq!((d.phase, d.reason), (APIKeyPhase::Failed, "TierNotFound"));
    assert!(
        d.message.contains("offered: silver, bronze"),
        "{}",
        d.message
    );
    let no_keys = resolution(&["gold"], false);
    assert_eq!(
        phase(
            &rejected,
            Some(&product(ApprovalMode::Automatic)),
            Some(&no_keys)
        ),
        (APIKeyPhase::Failed, "NoAPIKeyAuth")
    );
    let mut anonymous = key();
    anonymous.spec.requested_by = None;
    assert_eq!(
        phase(
            &anonymous,
            Some(&product(ApprovalMode::Automatic)),
            Some(&r)
        ),
        (APIKeyPhase::Failed, "MissingRequester")
    );
}

#[test]
fn denied_wins_over_expired_which_wins_over_approved() {
    let r = resolution(&["gold"], true);
    let automatic = product(ApprovalMode::Automatic);
    let mut k = key();
    k.spec.expires_at = Some(Time("2026-05-31T23:59:59Z".parse().unwrap()));
    assert_eq!(
        phase(&k, Some(&automatic), Some(&r)),
        (APIKeyPhase::Expired, "Expired")
    );
    k.spec.approval = approval(false);
    let d = evaluate(&k, Some(&automatic), Some(&r), now());
    assert_eq!(
        (d.phase, d.message.as_str()),
        (APIKeyPhase::Denied, "denied by owner: because")
    );
    k.spec.approval = approval(true);
    k.spec.expires_at = Some(Time("2026-06-01T00:00:01Z".parse().unwrap()));
    assert_eq!(
        phase(&k, Some(&automatic), Some(&r)),
        (APIKeyPhase::Approved, "Approved")
    );
    k.spec.expires_at = Some(Time(now()));
    assert_eq!(
        phase(&k, Some(&automatic), Some(&r)),
        (APIKeyPhase::Expired, "Expired"),
        "expiry is inclusive"
    );
}

#[test]
fn status_has_exactly_one_true_condition_and_no_secret_unless_approved() {
    let r = resolution(&["gold"], true);
    let d = evaluate(
        &key(),
        Some(&product(ApprovalMode::Manual)),
        Some(&r),
        now(),
    );
    let status = status_for(&key(), &d, None, &[], now());
    assert_eq!(status.phase, Some(APIKeyPhase::Pending));
    assert_eq!(status.conditions.len(), 6, "five phases and Ready");
    let true_ones: Vec<_> = status
        .conditions
        .iter()
        .filter(|c| c.status == "True")
        .map(|c| c.type_.as_str())
        .collect();
    assert_eq!(true_ones, ["Pending"]);
    let ready = |s: &APIKeyStatus| {
        let c = s.conditions.iter().find(|c| c.type_ == READY).unwrap();
        (c.status.clone(), c.reason.clone())
    };
    assert_eq!(ready(&status), ("False".into(), "AwaitingApproval".into()));
    assert!(status.secret_ref.is_none());
    let mut approved = key();
    approved.spec.approval = approval(true);
    let a = evaluate(
        &approved,
        Some(&product(ApprovalMode::Manual)),
        Some(&r),
        now(),
    );
    let kept = SecretKeyRef {
        name: "k-apikey".into(),
        key: "api_key".into(),
    };
    let enforced = status_for(&approved, &a, Some(kept), &status.conditions, now());
    assert_eq!(ready(&enforced), ("True".into(), ENFORCED.into()));
    let unwritten = status_for(&approved, &a, None, &[], now());
    assert_eq!(ready(&unwritten), ("False".into(), NOT_ENFORCED.into()));
    assert_eq!(
        status.limits.unwrap().daily,
        Some(10),
        "prospective limits are shown while pending"
    );
}

#[test]
fn a_route_withdrawn_or_not_accepted_fails_its_keys() {
    let product = product(ApprovalMode::Automatic);
    let mut withdrawn = resolution(&["gold"], true);
    let mut route = (**withdrawn.route.as_ref().unwrap()).clone();
    route.metadata.annotations = None;
    withdrawn.route = Some(Arc::new(route.clone()));
    assert_eq!(
        phase(&key(), Some(&product), Some(&withdrawn)),
        (APIKeyPhase::Failed, "RouteNotExposed")
    );

    let mut unaccepted = resolution(&["gold"], true);
    route.metadata.annotations = Some(
        [(
            crate::names::EXPOSED_ANNOTATION.to_string(),
            "true".to_string(),
        )]
        .into(),
    );
    route.status = None;
    unaccepted.route = Some(Arc::new(route));
    assert_eq!(
        phase(&key(), Some(&product), Some(&unaccepted)),
        (APIKeyPhase::Failed, "RouteNotAccepted")
    );
}

/// An approval stamped for the product with uid `product_uid` at tier `tier`.
fn bound_approval(approved: bool, product_uid: &str, tier: &str) -> Option<Approval> {
    approval(approved).map(|a| Approval {
        product_uid: Some(product_uid.into()),
        plan_tier: Some(tier.into()),
        ..a
    })
}

#[test]
fn an_approval_binds_the_product_and_the_tier_it_was_given_for() {
    use crate::names::key_reason::APPROVAL_OUTDATED;
    let r = resolution(&["gold", "silver"], true);
    let manual = product(ApprovalMode::Manual);
    let mut k = key();

    k.spec.approval = bound_approval(true, "p-1", "gold");
    assert_eq!(
        phase(&k, Some(&manual), Some(&r)),
        (APIKeyPhase::Approved, "Approved")
    );

    // The product was deleted and re-created under the same name: a new uid.
    k.spec.approval = bound_approval(true, "p-0", "gold");
    let d = evaluate(&k, Some(&manual), Some(&r), now());
    assert_eq!(
        (d.phase, d.reason),
        (APIKeyPhase::Pending, APPROVAL_OUTDATED)
    );
    assert!(d.message.contains("uid p-0"), "{}", d.message);
    assert!(d.message.contains("uid p-1"), "{}", d.message);

    // The tier changed after the review.
    k.spec.approval = bound_approval(true, "p-1", "silver");
    let d = evaluate(&k, Some(&manual), Some(&r), now());
    assert_eq!(
        (d.phase, d.reason),
        (APIKeyPhase::Pending, APPROVAL_OUTDATED)
    );
    assert!(
        d.message.contains("approved tier \"silver\"") && d.message.contains("\"gold\""),
        "{}",
        d.message
    );

    // An outdated approval counts as none: an automatic product approves on its own terms.
    assert_eq!(
        phase(&k, Some(&product(ApprovalMode::Automatic)), Some(&r)),
        (APIKeyPhase::Approved, "AutoApproved")
    );
    // A rejection stays a rejection whatever it was stamped with.
    k.spec.approval = bound_approval(false, "p-0", "silver");
    assert_eq!(
        phase(&k, Some(&manual), Some(&r)),
        (APIKeyPhase::Denied, "Denied")
    );
    // Approvals from before the stamps bind as they did.
    k.spec.approval = approval(true);
    assert_eq!(
        phase(&k, Some(&manual), Some(&r)),
        (APIKeyPhase::Approved, "Approved")
    );
}

#[test]
fn only_an_approval_for_this_product_and_tier_is_in_force() {
    // What the stuck-Pending gauge asks before it lets a policy's hold count a key as waiting
    // for an owner: a key with an approval in force waits for no one.
    let automatic = product(ApprovalMode::Automatic);
    let in_force = |approval| {
        let mut k = key();
        k.spec.approval = approval;
        super::phase::approval_in_force(&k, &automatic)
    };
    assert!(!in_force(None), "no approval");
    assert!(in_force(bound_approval(true, "p-1", "gold")));
    assert!(
        in_force(approval(true)),
        "unstamped approvals bind as they did"
    );
    assert!(
        !in_force(bound_approval(false, "p-1", "gold")),
        "a rejection"
    );
    assert!(
        !in_force(bound_approval(true, "p-0", "gold")),
        "an earlier product's"
    );
    assert!(
        !in_force(bound_approval(true, "p-1", "silver")),
        "another tier's"
    );
}

#[test]
fn an_automatic_approval_is_recorded_once_and_outlives_the_mode() {
    let (r, automatic) = (
        resolution(&["gold"], true),
        product(ApprovalMode::Automatic),
    );
    let first = evaluate(&key(), Some(&automatic), Some(&r), now());
    assert!(first.phase == APIKeyPhase::Approved && first.record_automatic);
    let mut k = key();
    k.spec.approval = bound_approval(true, "p-1", "gold").map(|a| Approval {
        reviewed_by: Some(crate::names::AUTOMATIC_REVIEWER.into()),
        ..a
    });
    let recorded = evaluate(&k, Some(&automatic), Some(&r), now());
    assert_eq!(
        (recorded.reason, recorded.record_automatic),
        ("AutoApproved", false)
    );
    // Switched to manual: the grant stands; a new request waits.
    let manual = product(ApprovalMode::Manual);
    let kept = evaluate(&k, Some(&manual), Some(&r), now());
    assert_eq!(
        (kept.phase, kept.record_automatic),
        (APIKeyPhase::Approved, false)
    );
    let new = (APIKeyPhase::Pending, "AwaitingApproval");
    assert_eq!(phase(&key(), Some(&manual), Some(&r)), new);
}

#[test]
fn a_key_without_expiry_expires_at_its_creation_plus_the_maximum_lifetime() {
    let r = resolution(&["gold"], true);
    let automatic = product(ApprovalMode::Automatic);
    let year = std::time::Duration::from_secs(365 * 86_400);
    let mut k = key();
    k.spec.approval = approval(true);
    let created = |at: &str| Some(Time(at.parse().unwrap()));
    let with_lifetime = |k: &APIKey, lifetime| {
        let d = phase::past_max_lifetime(
            k,
            evaluate(k, Some(&automatic), Some(&r), now()),
            lifetime,
            now(),
        );
        (d.phase, d.record_automatic, d.message)
    };
    // Created before the upgrade, over a year ago: Expired, and when is said.
    k.metadata.creation_timestamp = created("2025-05-31T00:00:00Z");
    let (phase_now, record, message) = with_lifetime(&k, Some(year));
    assert_eq!((phase_now, record), (APIKeyPhase::Expired, false));
    assert!(
        message.contains("2026-05-31T00:00:00Z") && message.contains("365 days"),
        "{message}"
    );
    assert_eq!(
        phase::expiry(&k, Some(year)),
        Some("2026-05-31T00:00:00Z".parse().unwrap())
    );
    // Without a maximum (`--max-key-lifetime 0s`), as before.
    assert_eq!(with_lifetime(&k, None).0, APIKeyPhase::Approved);
    assert_eq!(phase::expiry(&k, None), None);
    // Younger than the lifetime: Approved, and due back at its implied expiry.
    k.metadata.creation_timestamp = created("2025-06-02T00:00:00Z");
    assert_eq!(with_lifetime(&k, Some(year)).0, APIKeyPhase::Approved);
    assert_eq!(
        phase::expiry(&k, Some(year)),
        Some("2026-06-02T00:00:00Z".parse().unwrap())
    );
    // An expiresAt of its own wins; a denial stays a denial.
    k.spec.expires_at = Some(Time("2026-07-01T00:00:00Z".parse().unwrap()));
    k.metadata.creation_timestamp = created("2020-01-01T00:00:00Z");
    assert_eq!(with_lifetime(&k, Some(year)).0, APIKeyPhase::Approved);
    k.spec.expires_at = None;
    k.spec.approval = approval(false);
    assert_eq!(with_lifetime(&k, Some(year)).0, APIKeyPhase::Denied);
}
