//! The phase rules: what phase a key is in, and why, from the key, its product and what
//! discovery found.

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Resource;

use crate::discovery::Resolution;
use crate::names::AUTOMATIC_REVIEWER;
use crate::names::key_reason::{APPROVAL_OUTDATED, AUTO_APPROVED};
use crate::resources::kuadrant::{ApiKeyAuth, Credentials};
use crate::resources::{APIKey, APIKeyPhase, APIProduct, Approval, ApprovalMode, DiscoveredPlan};

/// The outcome of the phase rules for one key.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// The phase.
    pub phase: APIKeyPhase,
    /// PascalCase reason for the phase's condition.
    pub reason: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// The requested tier's plan, when the product offers it.
    pub plan: Option<DiscoveredPlan>,
    /// The API-key rule, its credential location and the AuthPolicy's namespace.
    pub auth: Option<(ApiKeyAuth, Option<Credentials>, String)>,
    /// Host name to call the API on.
    pub hostname: Option<String>,
    /// Approved by the product's automatic mode, and `spec.approval` does not record it yet: the
    /// controller writes the approval (reviewer [`AUTOMATIC_REVIEWER`]).
    pub record_automatic: bool,
}

impl Evaluation {
    pub(super) fn with(
        mut self,
        phase: APIKeyPhase,
        reason: &'static str,
        message: String,
    ) -> Self {
        self.phase = phase;
        self.reason = reason;
        self.message = message;
        self
    }
}

/// Applies the phase rules, in order: Failed > Denied > Expired > Approved > Pending.
pub fn evaluate(
    key: &APIKey,
    product: Option<&APIProduct>,
    resolution: Option<&Resolution>,
    now: Timestamp,
) -> Evaluation {
    let product_name = format!(
        "{}/{}",
        key.product_namespace().unwrap_or_default(),
        key.spec.api_product_ref.name
    );
    let plans = resolution.map(Resolution::plans).unwrap_or_default();
    let base = Evaluation {
        phase: APIKeyPhase::Pending,
        reason: "",
        message: String::new(),
        plan: plans.iter().find(|p| p.tier == key.spec.plan_tier).cloned(),
        auth: resolution.and_then(Resolution::api_key_rule),
        hostname: resolution.and_then(Resolution::hostname),
        record_automatic: false,
    };
    let failed = |reason, message| base.clone().with(APIKeyPhase::Failed, reason, message);
    let Some(product) = product else {
        return failed(
            "ProductNotFound",
            format!("APIProduct {product_name} does not exist"),
        );
    };
    if product.meta().deletion_timestamp.is_some() {
        return failed(
            "ProductDeleted",
            format!("APIProduct {product_name} is being deleted"),
        );
    }
    // A route the platform engineer withdrew (or no Gateway accepts) carries no keys.
    if let Some((reason, message)) = resolution.and_then(|r| r.route_problem(product)) {
        return failed(
            reason,
            format!("APIProduct {product_name} cannot serve keys: {message}"),
        );
    }
    if base.plan.is_none() {
        let offered: Vec<_> = plans.iter().map(|p| p.tier.as_str()).collect();
        return failed(
            "TierNotFound",
            format!(
                "tier {:?} is not offered by APIProduct {product_name} (offered: {})",
                key.spec.plan_tier,
                if offered.is_empty() {
                    "none".to_string()
                } else {
                    offered.join(", ")
                }
            ),
        );
    }
    if base.auth.is_none() {
        return failed(
            "NoAPIKeyAuth",
            format!(
                "no enforced AuthPolicy with an apiKey rule protects APIProduct {product_name}'s route"
            ),
        );
    }
    if key
        .spec
        .requested_by
        .as_ref()
        .is_none_or(|r| r.user_id.is_empty())
    {
        return failed(
            "MissingRequester",
            "spec.requestedBy.userId is empty (the devportal admission webhook sets it)".into(),
        );
    }
    let reviewer = key
        .spec
        .approval
        .as_ref()
        .and_then(|a| a.reviewed_by.clone())
        .unwrap_or_else(|| "a reviewer".into());
    if let Some(approval) = key.spec.approval.as_ref().filter(|a| !a.approved) {
        let why = approval
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        return base.with(
            APIKeyPhase::Denied,
            "Denied",
            format!("denied by {reviewer}{why}"),
        );
    }
    if let Some(expires) = &key.spec.expires_at
        && expires.0 <= now
    {
        return base.with(
            APIKeyPhase::Expired,
            "Expired",
            format!("expired at {}", expires.0),
        );
    }
    let approval = key.spec.approval.as_ref().filter(|a| a.approved);
    let outdated = approval.and_then(|a| outdated_approval(a, key, product));
    if approval.is_some() && outdated.is_none() {
        if reviewer == AUTOMATIC_REVIEWER {
            return base.with(
                APIKeyPhase::Approved,
                AUTO_APPROVED,
                format!(
                    "APIProduct {product_name} approves keys automatically (approval recorded in \
                     spec.approval)"
                ),
            );
        }
        return base.with(
            APIKeyPhase::Approved,
            "Approved",
            format!("approved by {reviewer}"),
        );
    }
    if product.spec.approval_mode == ApprovalMode::Automatic {
        return Evaluation {
            record_automatic: true,
            ..base.with(
                APIKeyPhase::Approved,
                AUTO_APPROVED,
                format!("APIProduct {product_name} approves keys automatically"),
            )
        };
    }
    if let Some(why) = outdated {
        return base.with(
            APIKeyPhase::Pending,
            APPROVAL_OUTDATED,
            format!(
                "the approval by {reviewer} no longer counts: {why}; waiting for an owner of \
                 APIProduct {product_name} to review the request again"
            ),
        );
    }
    base.with(
        APIKeyPhase::Pending,
        "AwaitingApproval",
        format!("waiting for an owner of APIProduct {product_name} to approve"),
    )
}

/// When `key` expires: its `spec.expiresAt`, else, under a maximum key lifetime, its creation plus
/// that lifetime (a key created before the webhook gave every key an `expiresAt`, or past it).
pub fn expiry(key: &APIKey, max_lifetime: Option<Duration>) -> Option<Timestamp> {
    if let Some(at) = &key.spec.expires_at {
        return Some(at.0);
    }
    let created = key.metadata.creation_timestamp.as_ref()?.0;
    let lifetime = SignedDuration::try_from(max_lifetime?).ok()?;
    created.checked_add(lifetime).ok()
}

/// `evaluation` with the maximum key lifetime applied to a key without `spec.expiresAt`: a key
/// that would be Approved or Pending is Expired once it is older than the lifetime (the phase
/// rules' order: Failed and Denied stay).
pub fn past_max_lifetime(
    key: &APIKey,
    evaluation: Evaluation,
    max_lifetime: Option<Duration>,
    now: Timestamp,
) -> Evaluation {
    if key.spec.expires_at.is_some()
        || !matches!(
            evaluation.phase,
            APIKeyPhase::Approved | APIKeyPhase::Pending
        )
    {
        return evaluation;
    }
    match (expiry(key, max_lifetime), max_lifetime) {
        (Some(at), Some(lifetime)) if at <= now => Evaluation {
            record_automatic: false,
            ..evaluation.with(
                APIKeyPhase::Expired,
                "Expired",
                format!(
                    "expired at {at}: the key has no spec.expiresAt and keys live at most {} \
                     (--max-key-lifetime) from their creation",
                    crate::webhook::rules::expiry::lifetime_text(lifetime)
                ),
            )
        },
        _ => evaluation,
    }
}

/// Why `approval` does not bind `key` as it stands, if it does not: it was given to another
/// APIProduct (this one's uid differs: deleted and re-created under the same name) or to another
/// tier than the key's. An approval without these stamps (written before devportal stamped them)
/// binds as before.
/// Whether `key` carries an approval in force for `product` (`spec.approval` approves it, for
/// this product and tier). Without one, an automatic product approves the key, unless an
/// APIKeyPolicy holds it for an owner (`controller::policy::hold_for_owner`).
pub(in crate::controller) fn approval_in_force(key: &APIKey, product: &APIProduct) -> bool {
    key.spec
        .approval
        .as_ref()
        .is_some_and(|a| a.approved && outdated_approval(a, key, product).is_none())
}

fn outdated_approval(approval: &Approval, key: &APIKey, product: &APIProduct) -> Option<String> {
    let uid = product.meta().uid.as_deref().unwrap_or_default();
    if let Some(reviewed) = approval.product_uid.as_deref()
        && reviewed != uid
    {
        return Some(format!(
            "it was given to an earlier APIProduct of this name (uid {reviewed}), not to the \
             current one (uid {uid})"
        ));
    }
    if let Some(tier) = approval.plan_tier.as_deref()
        && tier != key.spec.plan_tier
    {
        return Some(format!(
            "it approved tier {tier:?}, and the key asks for tier {:?}",
            key.spec.plan_tier
        ));
    }
    None
}
