//! The validating webhook for APIKeys: [`validate_key`] and its checks — the requester, the
//! product (exists, Published or owned, offers the tier), expiry, the key limit, who may approve
//! (and that an approval binds an existing product), and which request fields may change: only
//! by the requester or an admin, and only while Pending.

use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::jiff::Timestamp;

use super::{
    Change, Checked, Limits, Reason, Verdict, automatic, delegation, expiry, guarded_metadata,
    key_limit, lookup_failed, policy, rotation,
};
use crate::names::{AUTOMATIC_REVIEWER, GROUP};
use crate::resources::{APIKey, APIKeyPhase, APIKeySpec, APIProduct, PublishStatus};
use crate::webhook::lookup::{Lookup, Read};

/// Answers "may this user approve that product?" at most once per product per request.
struct Approvers<'a, C> {
    lookup: &'a C,
    user: &'a UserInfo,
    known: Vec<(String, String, bool)>,
}

impl<C: Lookup> Approvers<'_, C> {
    async fn may(&mut self, namespace: &str, product: &str) -> Checked<bool> {
        if let Some((_, _, allowed)) = self
            .known
            .iter()
            .find(|(ns, name, _)| ns == namespace && name == product)
        {
            return Ok(*allowed);
        }
        let allowed = self
            .lookup
            .may_approve(self.user, namespace, product)
            .await
            .map_err(|e| lookup_failed("approval permissions (SubjectAccessReview)", e))?;
        self.known.push((namespace.into(), product.into(), allowed));
        Ok(allowed)
    }
}

/// The namespace and name of the product a key references.
fn product_of(key: &APIKey) -> Checked<(&str, &str)> {
    let namespace = key.product_namespace().ok_or_else(|| {
        Verdict::deny(
            Reason::BadRequest,
            "the APIKey has no namespace and spec.apiProductRef.namespace is empty",
        )
    })?;
    Ok((namespace, key.spec.api_product_ref.name.as_str()))
}

fn is_pending(key: &APIKey) -> bool {
    key.spec.approval.is_none()
        && matches!(
            key.status.as_ref().and_then(|s| s.phase),
            None | Some(APIKeyPhase::Pending)
        )
}

/// The requester-editable fields that differ between `old` and `new`, by their field path.
fn changed_request_fields(old: &APIKeySpec, new: &APIKeySpec) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if old.api_product_ref != new.api_product_ref {
        changed.push("spec.apiProductRef");
    }
    if old.plan_tier != new.plan_tier {
        changed.push("spec.planTier");
    }
    if old.use_case != new.use_case {
        changed.push("spec.useCase");
    }
    if old.expires_at != new.expires_at {
        changed.push("spec.expiresAt");
    }
    if old.secret_ref != new.secret_ref {
        changed.push("spec.secretRef");
    }
    changed
}

/// The product exists, is Published (or the user owns it) and offers the requested tier. A denial
/// based on the cached copy is confirmed with a live read first, so a product published or given
/// plans a moment ago is not refused on stale data.
async fn check_product<C: Lookup>(
    lookup: &C,
    approvers: &mut Approvers<'_, C>,
    namespace: &str,
    name: &str,
    tier: &str,
) -> Checked {
    let cached = product_checks(lookup, approvers, namespace, name, tier, Read::Cached).await;
    match cached {
        Err(Verdict {
            reason: Reason::ProductNotPublished | Reason::NoPlans | Reason::UnknownTier,
            ..
        }) => product_checks(lookup, approvers, namespace, name, tier, Read::Live).await,
        other => other,
    }
}

async fn product_checks<C: Lookup>(
    lookup: &C,
    approvers: &mut Approvers<'_, C>,
    namespace: &str,
    name: &str,
    tier: &str,
    read: Read,
) -> Checked {
    let product = lookup
        .product(namespace, name, read)
        .await
        .map_err(|e| lookup_failed(&format!("APIProduct {namespace}/{name}"), e))?
        .ok_or_else(|| {
            Verdict::deny(
                Reason::ProductNotFound,
                format!(
                    "APIProduct {name:?} not found in namespace {namespace:?}: set spec.apiProductRef \
                     to a product listed by `kubectl get apiproducts -A`"
                ),
            )
        })?;
    if product.spec.publish_status != PublishStatus::Published
        && !approvers.may(namespace, name).await?
    {
        return Err(Verdict::deny(
            Reason::ProductNotPublished,
            format!(
                "APIProduct {namespace}/{name} is a Draft: only its owners and API admins may \
                 request keys until it is Published"
            ),
        ));
    }
    check_tier(&product, namespace, name, tier)
}

fn check_tier(product: &APIProduct, namespace: &str, name: &str, tier: &str) -> Checked {
    let plans = product
        .status
        .as_ref()
        .map(|s| s.discovered_plans.as_slice())
        .unwrap_or_default();
    if plans.is_empty() {
        return Err(Verdict::deny(
            Reason::NoPlans,
            format!(
                "APIProduct {namespace}/{name} offers no plan tiers yet (no PlanPolicy discovered for \
                 its route), so it accepts no key requests"
            ),
        ));
    }
    if plans.iter().any(|p| p.tier == tier) {
        return Ok(());
    }
    let tiers: Vec<_> = plans.iter().map(|p| p.tier.as_str()).collect();
    Err(Verdict::deny(
        Reason::UnknownTier,
        format!(
            "spec.planTier {tier:?} is not offered by APIProduct {namespace}/{name}; choose one of: {}",
            tiers.join(", ")
        ),
    ))
}

/// The approval, if written, comes from someone who may approve the product and names them.
async fn check_approval<C: Lookup>(
    approvers: &mut Approvers<'_, C>,
    change: Change<'_, APIKey>,
    username: &str,
) -> Checked {
    let written = match change {
        Change::Create(key) => key.spec.approval.is_some(),
        Change::Update { old, new } => new.spec.approval != old.spec.approval,
    };
    if !written {
        return Ok(());
    }
    let key = change.new_object();
    if let Change::Create(key) = change
        && key
            .spec
            .approval
            .as_ref()
            .is_some_and(|a| a.reviewed_by.as_deref() == Some(AUTOMATIC_REVIEWER))
    {
        // Recorded by the mutating webhook (which overwrites any reviewer a client sends).
        return automatic::check_create(approvers.lookup, key).await;
    }
    let (namespace, name) = product_of(key)?;
    if !approvers.may(namespace, name).await? {
        return Err(Verdict::deny(
            Reason::NotApprover,
            format!(
                "user {username:?} may not approve keys for APIProduct {namespace}/{name}: needs verb \
                 \"approve\" on apiproducts.{GROUP} {name:?} in namespace {namespace:?}"
            ),
        ));
    }
    // The mutating webhook stamps the uid of the product it read; none means there was none.
    if let Some(approval) = &key.spec.approval
        && approval.approved
        && approval.product_uid.is_none()
    {
        return Err(Verdict::deny(
            Reason::ProductNotFound,
            format!(
                "APIProduct {namespace}/{name} not found: an approval binds the product it \
                 approves (spec.approval.productUID), so there must be one"
            ),
        ));
    }
    if let Some(approval) = &key.spec.approval
        && approval.reviewed_by.as_deref() != Some(username)
    {
        return Err(Verdict::deny(
            Reason::ReviewerMismatch,
            format!(
                "spec.approval.reviewedBy must be the reviewer's own username {username:?}; \
                 devportal's mutating webhook stamps it"
            ),
        ));
    }
    Ok(())
}

/// The validating webhook for APIKeys.
pub async fn validate_key<C: Lookup>(
    lookup: &C,
    limits: &Limits,
    change: Change<'_, APIKey>,
    user: &UserInfo,
    now: Timestamp,
    dry_run: bool,
) -> Verdict {
    let warnings = match change {
        Change::Update { old, new } => {
            match guarded_metadata::check(lookup, limits, old, new, user).await {
                Ok(warnings) => warnings,
                Err(denial) => return denial,
            }
        }
        Change::Create(_) => Vec::new(),
    };
    if let Err(denial) = rotation::check(lookup, change.clone(), user).await {
        return denial;
    }
    if let Err(denial) = super::review_withdrawal::check(&change) {
        return denial;
    }
    let mut warnings = warnings;
    let checked = validate_key_checked(lookup, limits, change, user, (now, dry_run), &mut warnings);
    let mut verdict = match checked.await {
        Ok(reason) => Verdict::allow(reason),
        Err(denial) => denial,
    };
    verdict.warnings.extend(warnings);
    verdict
}

async fn validate_key_checked<C: Lookup>(
    lookup: &C,
    limits: &Limits,
    change: Change<'_, APIKey>,
    user: &UserInfo,
    at: (Timestamp, bool),
    warnings: &mut Vec<String>,
) -> Checked<Reason> {
    let now = at.0;
    let username = user
        .username
        .as_deref()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| Verdict::deny(Reason::NoUser, "the request carries no username"))?;
    let mut approvers = Approvers {
        lookup,
        user,
        known: Vec::new(),
    };
    match change {
        Change::Create(key) => {
            // The caller, or the user a trusted front end acts for.
            let requester = delegation::check_requester(lookup, key, user).await?;
            check_approval(&mut approvers, change, username).await?;
            let (namespace, name) = product_of(key)?;
            check_product(lookup, &mut approvers, namespace, name, &key.spec.plan_tier).await?;
            expiry::check(key, limits, now)?;
            let judged = policy::judge_cached(lookup, limits, key, now).await?;
            warnings.extend(policy::check(&judged)?);
            let holder = key_limit::holder(&requester.user, namespace, name);
            warnings.extend(policy::check_key_limit(
                lookup,
                limits,
                &judged,
                (key, holder),
                at,
            )?);
            Ok(Reason::Allowed)
        }
        Change::Update { old, new } => {
            if old.spec == new.spec {
                return Ok(Reason::Unchanged);
            }
            if username == limits.controller_username {
                // The controller writes an owner's APIKeyApproval (checked when it was admitted)
                // or records an automatic approval; nothing else.
                if super::approval::controller_applies(limits, &change, user) {
                    let verdict = super::approval::check_controller_review(lookup, change).await;
                    return if verdict.allowed() {
                        Ok(verdict.reason)
                    } else {
                        Err(verdict)
                    };
                }
                return automatic::check(lookup, old, new).await;
            }
            if old.spec.requested_by != new.spec.requested_by {
                return Err(Verdict::deny(
                    Reason::RequestedByImmutable,
                    "spec.requestedBy is immutable: it records who requested the key",
                ));
            }
            let changed = changed_request_fields(&old.spec, &new.spec);
            if !changed.is_empty() {
                if !is_pending(old) {
                    let phase = match &old.spec.approval {
                        Some(a) if a.approved => "approved",
                        Some(_) => "denied",
                        None => old
                            .status
                            .as_ref()
                            .and_then(|s| s.phase)
                            .map_or("Pending", APIKeyPhase::as_str),
                    };
                    return Err(Verdict::deny(
                        Reason::NotPending,
                        format!(
                            "{} may change only while the key is Pending, and this key is {phase}: \
                             request a new APIKey instead",
                            changed.join(", ")
                        ),
                    ));
                }
                let requester = old
                    .spec
                    .requested_by
                    .as_ref()
                    .map(|r| r.user_id.as_str())
                    .unwrap_or_default();
                // The request is the requester's; owners review it (spec.approval) and no more.
                // Admins hold `approve` on every product in every namespace.
                // A trusted front end edits its user's request as the user.
                if username != requester
                    && !delegation::acts_for(lookup, user, requester).await?
                    && !approvers.may("", "").await?
                {
                    return Err(Verdict::deny(
                        Reason::NotRequester,
                        format!(
                            "only the requester {requester:?} or an API admin may change {}; a \
                             reviewer may change only spec.approval (and a front end may act \
                             only for users it may impersonate)",
                            changed.join(", ")
                        ),
                    ));
                }
                let (namespace, name) = product_of(new)?;
                let product_changed = old.spec.api_product_ref != new.spec.api_product_ref
                    || old.product_namespace() != new.product_namespace();
                if product_changed || old.spec.plan_tier != new.spec.plan_tier {
                    check_product(lookup, &mut approvers, namespace, name, &new.spec.plan_tier)
                        .await?;
                }
                if old.spec.expires_at != new.spec.expires_at {
                    expiry::check_kept(new, limits)?;
                    expiry::check(new, limits, now)?;
                }
                // The policies judge the request as it now stands, its life from its creation.
                let born = new
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map_or(now, |t| t.0);
                let judgement = policy::judge_cached(lookup, limits, new, born).await?;
                warnings.extend(policy::check(&judgement)?);
                if product_changed {
                    check_approval(&mut approvers, change, username).await?;
                    let holder = key_limit::holder(requester, namespace, name);
                    let claim = (new, holder);
                    warnings.extend(policy::check_key_limit(
                        lookup, limits, &judgement, claim, at,
                    )?);
                    return Ok(Reason::Allowed);
                }
            }
            check_approval(&mut approvers, change, username).await?;
            Ok(Reason::Allowed)
        }
    }
}
